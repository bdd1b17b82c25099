"""What an upstream serves from what it keeps (`ResponseStore`): `GET` and `DELETE
/v1/responses/{id}`, `GET /v1/responses/{id}/input_items`, `POST
/v1/responses/{id}/cancel` and `POST /v1/conversations`, with OpenAI's answers for
an id it does not know. `check_continuation` refuses a Responses follow-up of a
response or conversation this upstream did not make, in OpenAI's words."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from .api_call import ApiCall, Handler
from .errors import SimError, invalid_value
from .images import ImageCache
from .json_bytes import dumps
from .replies import BodyReply, Reply
from .response_store import ResponseStore

_MAX_ITEMS_PER_PAGE = 100
_SERVED = frozenset({("GET", None), ("DELETE", None), ("GET", "input_items"), ("POST", "cancel")})


def stored_response_handler(method: str, endpoint: str, query: bytes, store: ResponseStore) -> Handler | None:
    """The handler for `responses/{id}[/input_items|/cancel]`, or None when the path names none."""
    parts = endpoint.split("/")
    if parts[0] != "responses" or len(parts) not in (2, 3) or not parts[1]:
        return None
    response_id, action = parts[1], (parts[2] if len(parts) == 3 else None)
    if (method, action) not in _SERVED:
        return None

    async def handler(call: ApiCall, images: ImageCache) -> Reply:
        stored = store.find(call.upstream, response_id)
        if stored is None:
            raise SimError(404, f"Response with id '{response_id}' not found.")
        if action == "input_items":
            return BodyReply(200, dumps(_page(stored.input_items, parse_qs(query.decode("latin-1")))))
        if action == "cancel":
            if not stored.background:
                raise SimError(400, "Cannot cancel a synchronous response.")
            return BodyReply(200, stored.body())  # it already finished: cancelling changes nothing
        if method == "DELETE":
            store.forget(call.upstream, response_id)
            return BodyReply(200, dumps({"id": response_id, "object": "response", "deleted": True}))
        return BodyReply(200, stored.body())

    return handler


def conversation_handler(store: ResponseStore) -> Handler:
    """`POST /v1/conversations`: a new, empty conversation on this upstream."""

    async def handler(call: ApiCall, images: ImageCache) -> Reply:
        metadata = call.fields.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise SimError(400, "Invalid type for 'metadata': expected an object.", param="metadata")
        return BodyReply(200, dumps(store.open_conversation(call.upstream, metadata)))

    return handler


def check_continuation(call: ApiCall, store: ResponseStore) -> dict[str, str] | None:
    """Refuse a follow-up of what this upstream did not make; the conversation the
    new response belongs to, if any."""
    previous, conversation = call.fields.get("previous_response_id"), call.fields.get("conversation")
    if previous is not None and conversation is not None:
        raise SimError(
            400,
            "Mutually exclusive parameters: Ensure you are only providing one of: "
            "'previous_response_id' or 'conversation'.",
            code="mutually_exclusive_parameters",
        )
    if previous is not None and (not isinstance(previous, str) or store.find(call.upstream, previous) is None):
        raise SimError(
            400,
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    if conversation is None:
        return None
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else conversation
    if not isinstance(conversation_id, str) or not store.has_conversation(call.upstream, conversation_id):
        raise SimError(404, f"Conversation with id '{conversation_id}' not found.", param="conversation")
    return {"id": conversation_id}


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of input items, as OpenAI's list endpoints page (`limit`, `order`, `after`)."""
    order = query.get("order", ["desc"])[0]
    if order not in ("asc", "desc"):
        raise invalid_value("order", order, ("asc", "desc"))
    limit_text = query.get("limit", ["20"])[0]
    limit = int(limit_text) if limit_text.isdigit() else 0
    if not 1 <= limit <= _MAX_ITEMS_PER_PAGE:
        raise SimError(
            400,
            f"Invalid 'limit': expected an integer from 1 to {_MAX_ITEMS_PER_PAGE}, got '{limit_text}'.",
            param="limit",
        )
    ordered = items if order == "asc" else items[::-1]
    if after := query.get("after", [None])[0]:
        ids = [item["id"] for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(ordered) > limit,
    }
