"""A FOCUS line: one charge of one ledger row, or a day's charges summed.

A ledger row usually carries one charge (the provider that answered, on its table);
a failed attempt its provider bills adds one under that provider's billing owner.
FOCUS wants one invoice issuer per line, so a line is a charge. Rows nobody billed
(refused before an upstream, failures not billed, unpriced routes) have no charge
and no line: `tollgate spend --by status` still counts them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from ...ledger import Charge, LedgerRow
from ...ledger.charge_sums import DayOfCharges
from ...ledger.row import answers, priced

# The model's maker, by how its name starts (a LiteLLM string's `vendor/` prefix is dropped first).
PUBLISHERS = (
    (("gpt-", "chatgpt-", "o1", "o3", "o4", "text-embedding-", "dall-e", "whisper", "tts-"), "OpenAI"),
    (("claude",), "Anthropic"),
    (("gemini", "imagen", "gemma"), "Google"),
    (("mistral", "mixtral", "codestral", "pixtral"), "Mistral AI"),
    (("llama",), "Meta"),
    (("command",), "Cohere"),
    (("grok",), "xAI"),
    (("flux",), "Black Forest Labs"),
)
SERVICES = {
    "images.generate": ("Images API", "Generative AI"),
    "images.edit": ("Images API", "Generative AI"),
    "responses": ("Responses API", "Generative AI"),
    "chat.completions": ("Chat Completions API", "Generative AI"),
    "embeddings": ("Embeddings API", "Natural Language Processing"),
}
# What a description adds for a charge not priced from the upstream's usage.
BASIS_NOTES = {
    "estimate": " (estimated: the upstream reported no usage)",
    "partial_estimate": " (the client closed the stream: its estimated input and the output relayed before)",
}


@dataclass(frozen=True, slots=True)
class FocusLine:
    start: dt.datetime  # the charge period, [start, end)
    end: dt.datetime
    billing_owner: str
    provider: str
    model: str
    surface: str
    price_table: str
    billed_nanousd: int
    listed_nanousd: int
    quantity: int
    unit: str  # Images, Tokens, or Requests where a charge was priced as a whole (an estimate)
    description: str
    # Tollgate's fields and tags: a day's sum keeps those every summed charge shares.
    fields: dict[str, str | None] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    requests: int = 1

    @property
    def publisher(self) -> str:
        name = self.model.rsplit("/", 1)[-1].lower()
        for prefixes, maker in PUBLISHERS:
            if name.startswith(prefixes):
                return maker
        return self.provider  # a model we cannot place: its seller is the best we know

    @property
    def service(self) -> tuple[str, str]:
        return SERVICES.get(self.surface, ("Other", "Other (AI and Machine Learning)"))


def charge_lines(rows: Iterable[LedgerRow]) -> Iterator[FocusLine]:
    for row in rows:
        for index, charge in enumerate(row.charges):
            answered = answers(index, charge.provider, row.provider, row.cost_lines)
            yield line_of(row, charge, *priced(row.cost_lines, answered=answered))


def daily_lines(lines: Iterable[FocusLine]) -> Iterator[FocusLine]:
    """Per day × route × provider × price table; split further where the billing owner, model,
    surface or pricing unit differ, so every column of a summed line is still true. Lines
    come oldest first: a day's sums are written when the next day begins."""
    days: dict[tuple, FocusLine] = {}
    for line in lines:
        day = line.start.date()
        if days and next(iter(days))[0] != day:
            yield from (_described(total) for total in days.values())
            days.clear()
        key = (
            day,
            line.fields.get("x_Route"),
            line.provider,
            line.billing_owner,
            line.price_table,
            line.model,
            line.surface,
            line.unit,
        )
        days[key] = _add(days[key], line) if key in days else _day_of(line)
    yield from (_described(total) for total in days.values())


def summed_daily_lines(day: DayOfCharges) -> Iterator[FocusLine]:
    """`daily_lines` of a day whose charges the ledger summed in SQL: a sum is a line of that
    many charges, which `daily_lines` adds up as it adds lines of one charge each."""
    if day.sums is None:
        return daily_lines(charge_lines(day.rows or ()))
    return daily_lines(line_of(one.row, one.charge, one.quantity, one.unit, requests=one.charges) for one in day.sums)


def line_of(row: LedgerRow, charge: Charge, quantity: int, unit: str, *, requests: int = 1) -> FocusLine:
    """The line of `charge` on `row`, which priced `quantity` `unit`; or, with `requests`,
    of that many charges summed (`row` holding what their rows share)."""
    model = row.upstream_model or row.route or "unknown"
    start = _parse(row.created_at).replace(microsecond=0)
    end = max(_to_next_second(_parse(row.finished_at or row.created_at)), start + dt.timedelta(seconds=1))
    answered = unit != "Requests"
    return FocusLine(
        start=start,
        end=end,
        billing_owner=charge.billing_owner,
        provider=charge.provider,
        model=model,
        surface=row.surface,
        price_table=charge.price_table or "",
        billed_nanousd=charge.cost_nanousd,
        listed_nanousd=charge.listed_nanousd,
        quantity=quantity,
        unit=unit,
        description=_description(row, charge, model, quantity, unit, answered=answered),
        fields={
            "x_RequestId": row.request_id,
            "x_Route": row.route,
            "x_RouteOwner": row.route_owner,
            "x_Team": row.team,
            "x_KeyId": row.key_id,
            "x_Model": model,
            "x_Surface": row.surface,
            "x_PriceTable": charge.price_table,
            "x_PriceSource": charge.price_source,
            "x_ListPriceTable": charge.list_price_table,
            "x_CostBasis": charge.cost_basis,
            "x_Status": row.status,
            "x_PromptVersion": row.prompt_version,
            "x_ReviewStatus": row.review_status,
            "x_UpstreamRequestId": row.upstream_request_id,
            "x_Simulated": "true" if row.simulated else "false",
        },
        tags={
            f"tollgate/{name}": value
            for name, value in (("route", row.route), ("route_owner", row.route_owner), ("team", row.team))
            if value
        },
        requests=requests,
    )


def _description(row: LedgerRow, charge: Charge, model: str, quantity: int, unit: str, *, answered: bool) -> str:
    what = f"{model} {row.surface}"
    if row.images:
        what += f", {row.images} image{'s' if row.images != 1 else ''} {row.size or ''} {row.quality or ''}".rstrip()
    if not answered:
        reason = "abandoned mid-request" if row.status == "abandoned" else "a failed attempt"
        return f"{what}: {reason}, billed at its estimate on {charge.price_table}"
    if unit == "Tokens":
        what += f": {quantity} tokens"
    return f"{what} on {charge.price_table}" + BASIS_NOTES.get(charge.cost_basis, "")


def _day_of(line: FocusLine) -> FocusLine:
    start = dt.datetime.combine(line.start.date(), dt.time(), dt.UTC)
    return replace(line, start=start, end=start + dt.timedelta(days=1))


def _add(total: FocusLine, line: FocusLine) -> FocusLine:
    return replace(
        total,
        billed_nanousd=total.billed_nanousd + line.billed_nanousd,
        listed_nanousd=total.listed_nanousd + line.listed_nanousd,
        quantity=total.quantity + line.quantity,
        requests=total.requests + line.requests,
        fields={name: value if line.fields.get(name) == value else None for name, value in total.fields.items()},
        tags={name: value for name, value in total.tags.items() if line.tags.get(name) == value},
    )


def _described(line: FocusLine) -> FocusLine:
    if line.requests == 1:
        return line
    description = (
        f"{line.model} {line.surface}: {line.requests} requests, {line.quantity} {line.unit.lower()} "
        f"on {line.price_table}"
    )
    return replace(line, description=description)


def _parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(dt.UTC)


def _to_next_second(moment: dt.datetime) -> dt.datetime:
    """FOCUS periods are whole seconds; an end is exclusive, so a fraction rounds up."""
    whole = moment.replace(microsecond=0)
    return whole + dt.timedelta(seconds=1) if moment.microsecond else whole
