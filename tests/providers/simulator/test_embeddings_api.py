"""The simulator's embeddings (providers/simulator/embeddings_api.py)."""

from __future__ import annotations

import base64
import struct

import httpx

from providers.image_tokens import text_tokens


async def test_embeddings_are_deterministic_unit_vectors(client: httpx.AsyncClient) -> None:
    request = {"model": "text-embedding-3-small", "input": ["alpha", "beta"], "dimensions": 64}
    floats = (await client.post("/v1/embeddings", json=request)).json()
    again = (await client.post("/v1/embeddings", json=request)).json()
    packed = (await client.post("/v1/embeddings", json={**request, "encoding_format": "base64"})).json()
    assert floats == again
    alpha, beta = (item["embedding"] for item in floats["data"])
    assert len(alpha) == 64 and alpha != beta
    assert abs(sum(value * value for value in alpha) - 1) < 1e-5
    unpacked = struct.unpack("<64f", base64.b64decode(packed["data"][0]["embedding"]))
    assert list(unpacked) == alpha
    assert floats["usage"] == {"prompt_tokens": text_tokens("alpha") + text_tokens("beta"), "total_tokens": 3}
    default = (await client.post("/v1/embeddings", json={"model": "m", "input": "x"})).json()
    assert len(default["data"][0]["embedding"]) == 1536
