"""What serving a request comes to, for the HTTP face to render: an estimate, a whole
answer or a relayed stream, each with the headers that say how it was served."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from providers.base import UpstreamReply
from providers.values import value

from .dispatch import Attempt
from .gateway import Gateway


@value
class Estimated:
    """`x-tollgate-estimate-only`: the estimate, and no upstream call."""

    document: dict[str, Any]
    headers: dict[str, str]


@value
class Answered:
    """A whole answer; `after` is work to run once it has been sent (keeping its images)."""

    reply: UpstreamReply
    headers: dict[str, str]
    after: Callable[[], Awaitable[None]] | None = None


@value
class Streamed:
    """An answer relayed event by event; the recording ends when the relay does."""

    relay: AsyncGenerator[bytes]
    reply: UpstreamReply
    headers: dict[str, str]


Answer = Estimated | Answered | Streamed


def price_headers(table: str | None, source: str | None) -> dict[str, str]:
    return {"x-tollgate-price-table": table, "x-tollgate-price-source": source} if table and source else {}


def answer_headers(
    gateway: Gateway,
    request_id: str,
    route: str | None,
    attempts: Sequence[Attempt],
    upstream_request_id: str | None = None,
) -> dict[str, str]:
    """What every answer to a proxied request says of its way, failures included: the
    route where one was found, the provider tried last and who it bills, how many tries."""
    headers = {"x-request-id": request_id, "x-tollgate-attempts": str(len(attempts))}
    if route:
        headers["x-tollgate-route"] = route
    if attempts:
        provider = attempts[-1].provider
        headers["x-tollgate-provider"] = provider
        headers["x-tollgate-billing-owner"] = gateway.billing_owner(provider)
    if upstream_request_id:
        headers["x-tollgate-upstream-request-id"] = upstream_request_id
    return headers
