"""The simulator's ASGI app at its edges: which upstream and endpoint a path names
(providers/simulator/paths.py), credentials, unknown paths, bad JSON, the model list."""

from __future__ import annotations

import httpx
import pytest

from providers.simulator.app import Simulator
from providers.simulator.paths import Target, parse_path

from .helpers import error_of


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/v1/chat/completions", Target("default", "chat/completions")),
        ("/openai/v1/images/generations", Target("openai", "images/generations")),
        ("/acme/v1/models", Target("acme", "models")),
        ("/openai/deployments/img/images/edits", Target("default", "images/edits", "img")),
        ("/azure-east/openai/deployments/gpt/chat/completions", Target("azure-east", "chat/completions", "gpt")),
        ("/openai/deployments/gpt/models", None),
        ("/health", None),
        ("/", None),
    ],
)
def test_parse_path(path: str, target: Target | None) -> None:
    assert parse_path(path) == target


async def test_missing_credentials_get_a_401_in_openai_shape(app: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as bare:
        response = await bare.get("/acme/v1/models")
        blank = await bare.get("/v1/models", headers={"Authorization": "Bearer "})
        azure = await bare.get("/v1/models", headers={"api-key": "azure-key"})
    assert response.status_code == 401 and blank.status_code == 401
    assert error_of(response)["code"] == "invalid_api_key"
    assert response.headers["x-request-id"].startswith("req_sim_")
    assert response.headers["x-simulator-upstream"] == "acme"
    assert azure.status_code == 200


async def test_unknown_paths_and_methods_are_404(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/audio/speech", json={})
    wrong_method = await client.get("/v1/chat/completions")
    assert missing.status_code == wrong_method.status_code == 404
    assert error_of(missing)["message"] == "Invalid URL (POST /v1/audio/speech)"


async def test_bad_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", content=b"{nope")
    assert response.status_code == 400
    assert "could not parse the JSON body" in error_of(response)["message"]


async def test_models_list(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    ids = [model["id"] for model in response.json()["data"]]
    assert response.json()["object"] == "list" and "gpt-image-2" in ids and "text-embedding-3-small" in ids
