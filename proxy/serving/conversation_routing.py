"""A conversation lives on one upstream.

A Responses answer binds its id (and its conversation's, where it has one) to the
provider, deployment and route that made it, in the state store, before the client
can name it: a complete answer before it is sent, a stream as its
`response.created` event passes. A follow-up naming a bound id
(`previous_response_id` or `conversation`) is planned on that provider alone,
whatever the weights and without fallbacks; when that provider is gone or
failing, the client is told so, never switched. An id never bound here (made
before Tollgate, or expired) routes as any request does: the upstream decides.

Only follow-ups look the map up, and only Responses answers write to it, once
each; chat, images and embeddings never touch it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import orjson

from providers.errors import FailureReason, ProxyError
from providers.types import Call, Surface

from ..errors import ConversationsUnavailable, InvalidRequest
from ..state import Binding, ConversationMap
from .dispatch import Exchange
from .gateway import Gateway
from .routing import RoutePlan

log = logging.getLogger("tollgate")

_PARSE_WHOLE_BELOW = 256 * 1024  # larger answers carry images: only their head is read
_LEADING_ID = re.compile(rb'^\s*\{\s*"id"\s*:\s*"([^"\\]+)"')
_CONVERSATION_ID = re.compile(rb'"conversation"\s*:\s*\{\s*"id"\s*:\s*"([^"\\]+)"')
_EDGE = 16 * 1024


class ConversationCannotMove(ProxyError):
    """The provider holding a conversation is no longer one this request may go to."""

    status = 503
    error_type = "server_error"
    reason = FailureReason.NO_PROVIDER
    code = "conversation_provider_unavailable"


class ConversationNotFound(InvalidRequest):
    """A follow-up to a response another team (or key) made: as unknown to it as to the upstream's other customers."""

    code = "previous_response_not_found"


async def plan_request(call: Call, gateway: Gateway, owner: str | None) -> RoutePlan:
    """The route plan: pinned to where the conversation lives for a bound follow-up,
    else the route's weighted targets and fallbacks. `owner`: who asks (Principal.owner)."""
    if call.continues is None:
        return gateway.router.plan(call.model, timeout_s=call.timeout_s)
    gateway.router.route(call.model)  # an unknown route is a 404 before any look-up
    binding = await gateway.conversations.find(call.continues)
    if binding is None:
        return gateway.router.plan(call.model, timeout_s=call.timeout_s)
    if not binding.reachable_by(owner):
        # The upstream would serve it (every team shares the provider's key): refuse here, without saying it exists.
        field = "conversation" if call.body.fields.get("conversation") is not None else "previous_response_id"
        raise ConversationNotFound(f"Previous response with id '{call.continues}' not found.", param=field)
    plan = gateway.router.plan_on(
        call.model, binding.provider, binding.model, continues=call.continues, timeout_s=call.timeout_s
    )
    if plan is None:
        raise cannot_move(call.continues, binding.provider, gateway, route=call.model)
    return plan


def cannot_move(continues: str, provider: str, gateway: Gateway, *, route: str) -> ConversationCannotMove:
    where = (
        f"route '{route}' no longer sends to '{provider}'"
        if provider in gateway.config.providers
        else f"provider '{provider}' is no longer configured"
    )
    return ConversationCannotMove(
        f"'{continues}', which this request continues, lives on provider '{provider}', and a conversation cannot "
        f"move to another provider, but {where}. Start a new conversation (without `previous_response_id` or "
        f"`conversation`), or ask the operator to keep '{provider}' in route '{route}' (at weight 0 it takes "
        "only follow-ups).",
        headers={"x-tollgate-provider": provider},
    )


def makes_conversations(call: Call) -> bool:
    """Does this request's answer make ids a follow-up may name? Responses, unless
    `store: false` keeps nothing upstream to follow up."""
    if call.surface is not Surface.RESPONSES or call.resource is not None:
        return False
    fields = call.body.fields
    return fields.get("store") is not False or "conversation" in fields


def binding_of(exchange: Exchange, plan: RoutePlan, owner: str | None) -> Binding:
    return Binding(exchange.target.provider, exchange.target.model, plan.route, owner)


async def bind_answer(conversations: ConversationMap, body: bytes, binding: Binding, request_id: str) -> None:
    """Bind the ids of a complete answer; called before the answer is sent."""
    await _bind(conversations, answer_ids(body), binding, request_id)


async def bind_as_it_passes(
    pieces: AsyncIterator[bytes], conversations: ConversationMap, binding: Binding, request_id: str
) -> AsyncIterator[bytes]:
    """A relayed stream, unchanged. The ids in its `response.created` event are bound
    while that event goes to the client, and the binding is done before anything
    after it (the completed response included) is sent."""
    pending: asyncio.Future[None] | None = None
    searching = True
    async with aclosing(pieces):  # closing this stream closes the relay, at once
        async for piece in pieces:
            if pending is not None:
                await pending
                pending = None
            if searching and (ids := created_ids(piece)):
                searching = False
                pending = asyncio.ensure_future(_bind(conversations, ids, binding, request_id))
            yield piece
        if pending is not None:
            await pending


async def _bind(conversations: ConversationMap, ids: list[str], binding: Binding, request_id: str) -> None:
    if not ids:
        return
    try:
        await conversations.bind(ids, binding)
    except ConversationsUnavailable:
        # The answer is made and billed: it still goes out. Its follow-ups will route as new ones.
        log.warning(
            "could not record which provider made this response; its follow-ups route as new requests",
            extra={"request_id": request_id, "provider": binding.provider},
        )


def answer_ids(body: bytes) -> list[str]:
    """A Response's own id and its conversation's. A small body is parsed whole; a
    large one (images) is read at its head, where OpenAI puts `id`, and near its
    ends, where the other top-level fields sit."""
    if len(body) < _PARSE_WHOLE_BELOW:
        try:
            return _ids(orjson.loads(body))
        except orjson.JSONDecodeError:
            return []
    ids = [match.group(1).decode() for match in (_LEADING_ID.match(body[:1024]),) if match]
    found = _CONVERSATION_ID.search(body[:_EDGE]) or _CONVERSATION_ID.search(body[-_EDGE:])
    return ids + ([found.group(1).decode()] if found else [])


def created_ids(piece: bytes) -> list[str]:
    """The ids in a stream's `response.created` event, if this piece of it holds one
    (its `event:` line names it, or its one-line `data:` does)."""
    at = piece.find(b"response.created")
    if at < 0:
        return []
    line_start = piece.rfind(b"\n", 0, at) + 1
    data_at = line_start if piece.startswith(b"data:", line_start) else piece.find(b"data:", at)
    if data_at < 0:
        return []
    line_end = piece.find(b"\n", data_at)
    try:
        created = orjson.loads(piece[data_at + 5 : line_end if line_end >= 0 else len(piece)])
    except orjson.JSONDecodeError:
        return []
    return _ids(created.get("response")) if isinstance(created, dict) else []


def _ids(response: Any) -> list[str]:
    if not isinstance(response, dict):
        return []
    ids = [response["id"]] if isinstance(response.get("id"), str) else []
    conversation = response.get("conversation")
    if isinstance(conversation, dict) and isinstance(conversation.get("id"), str):
        ids.append(conversation["id"])
    return ids
