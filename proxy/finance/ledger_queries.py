"""What the admin API and the console ask of the ledger: rows by filter, one row, a
review decision and the spend report. Both call these functions with the same
validated queries, so a page can never show what `/admin/...` would not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidRequest
from ..ledger import DisabledLedger, Filters, Ledger, LedgerRow, SqlLedger, utc_now
from ..ledger.archive import archived_month_of
from ..ledger.row import ReviewStatus, Status
from . import reports
from .reports import SpendReport, parse_bound, parse_group_by

AnyLedger = Ledger | DisabledLedger
Bound = Annotated[str, AfterValidator(parse_bound)]  # ISO 8601 date or datetime, normalised to UTC


class UnknownRequestId(InvalidRequest):
    status = 404
    code = "request_not_found"


class RequestArchived(InvalidRequest):
    status = 410
    code = "request_archived"


class ReviewNotRequired(InvalidRequest):
    status = 409
    code = "review_not_required"


# --- what callers send -------------------------------------------------------------------------


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestsQuery(_Query):
    since: Bound | None = None
    until: Bound | None = None  # exclusive
    route: str | None = None
    provider: str | None = None
    status: Status | None = None
    review_status: ReviewStatus | None = None
    limit: int = Field(default=100, ge=1, le=1000)

    @property
    def filters(self) -> Filters:
        return Filters(
            since=self.since,
            until=self.until,
            route=self.route,
            provider=self.provider,
            status=self.status,
            review_status=self.review_status,
        )


class SpendQuery(_Query):
    group_by: str | None = None  # checked by parse_group_by, which names the allowed fields
    since: Bound | None = None
    until: Bound | None = None
    format: Literal["json", "csv", "focus"] = "json"
    aggregate: Literal["daily"] | None = None  # with format=focus


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["approved", "rejected"]
    reviewer: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=10_000)


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, *, where: str) -> M:
    """The model, or a 400 that names the first bad parameter and what it should be."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            message = f"Unknown {where} '{name}'; known: {', '.join(model.model_fields)}."
        else:
            message = f"`{name}`: {error['msg'].removeprefix('Value error, ')}"
        raise InvalidRequest(message, param=name) from None


# --- what the ledger answers -------------------------------------------------------------------


async def find_requests(ledger: AnyLedger, query: RequestsQuery) -> list[LedgerRow]:
    """Rows matching the query, newest first."""
    return await ledger.find(query.filters, query.limit)


async def known_row(ledger: AnyLedger, request_id: str) -> LedgerRow:
    def find(sql: SqlLedger, connection: Any) -> tuple[LedgerRow | None, tuple[str, list[str]] | None]:
        row = sql.get(connection, request_id)
        return row, None if row else archived_month_of(sql, connection, request_id)

    row, archived = await ledger.read(find)
    if row is None:
        if archived:
            month, files = archived
            raise RequestArchived(
                f"Request {_shown(request_id)} was made in {month}, a month archived out of the ledger database "
                f"(`tollgate ledger archive`): its row is in {files[-1]} and its charges in {files[0]}, in the "
                "archive's directory. Spend reports of whole days still count it."
            )
        raise unknown_request(request_id)
    return row


async def record_review(ledger: AnyLedger, request_id: str, review: ReviewBody) -> LedgerRow:
    """Record a reviewer's decision on a row whose route requires review; the row as it now stands."""
    record = {"reviewer": review.reviewer, "note": review.note, "reviewed_at": utc_now()}

    def set_review(sql: SqlLedger, connection: Any) -> LedgerRow:
        row = sql.get(connection, request_id)
        if row is None:
            raise unknown_request(request_id)
        if row.review_status == "not_required":
            raise ReviewNotRequired(
                f"Request {row.request_id} needs no review: its route does not set `review: required`.",
                param="status",
            )
        sql.set_review(connection, request_id, review.status, record)
        return sql.get(connection, request_id) or row

    # One read through the barrier: the row as of now, its review, and the row reviewed.
    return await ledger.read(set_review)


def spend_group_by(text: str | None) -> tuple[str, ...]:
    """`group_by` as given, checked; a bad field is a 400 naming `group_by`."""
    try:
        return parse_group_by(text)
    except InvalidRequest as error:
        error.param = "group_by"
        raise


async def spend_report(
    ledger: AnyLedger, group_by: tuple[str, ...], since: str | None, until: str | None
) -> SpendReport:
    filters = Filters(since=since, until=until)
    return await ledger.read(lambda sql, connection: reports.spend_report(sql, connection, group_by, filters))


async def focus_stream(ledger: AnyLedger, since: str | None, until: str | None, *, daily: bool) -> AsyncIterator[str]:
    """The same CSV in pieces, sent as they are read: an export of any size in little memory."""
    from .focus import ledger_focus

    filters = Filters(since=since, until=until)
    return await ledger.stream(lambda sql, connection: ledger_focus(sql, connection, filters, daily=daily))


def unknown_request(request_id: str) -> UnknownRequestId:
    return UnknownRequestId(
        f"No ledger row for request id '{_shown(request_id)}'. Ids are in each response's `x-request-id` header; "
        "check the id, and that this proxy shares its ledger database with the one that answered.",
        param="request_id",
    )


def _shown(request_id: str) -> str:
    return request_id if len(request_id) <= 64 else request_id[:61] + "..."
