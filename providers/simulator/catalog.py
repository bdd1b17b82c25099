"""`GET /v1/models`: the models the simulator speaks.

Any model name is accepted on the other endpoints (a proxy may rename models per
provider); this list is what a client discovering models sees.
"""

from __future__ import annotations

from typing import Final

from .api_call import ApiCall
from .images import ImageCache
from .json_bytes import dumps
from .replies import BodyReply, Reply

MODELS: Final = (
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-4.1",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
_CREATED: Final = 1_767_225_600  # 2026-01-01, fixed so the body is constant

MODEL_LIST_BODY: Final = dumps(
    {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": _CREATED, "owned_by": "tollgate-simulator"} for model in MODELS
        ],
    }
)


async def list_models(call: ApiCall, images: ImageCache) -> Reply:
    return BodyReply(200, MODEL_LIST_BODY)
