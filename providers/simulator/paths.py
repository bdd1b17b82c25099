"""Which upstream and endpoint a request path names.

The proxy reaches each of its providers under its own prefix (`/openai/v1/…`,
`/acme/v1/…`), so one simulator can play several providers and tests can fail
one of them alone. Azure's deployment form is understood too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_UPSTREAM: Final = "default"
AZURE_ENDPOINTS: Final = frozenset(
    {"images/generations", "images/edits", "chat/completions", "responses", "embeddings"}
)


@dataclass(frozen=True, slots=True)
class Target:
    upstream: str
    endpoint: str  # the path after `/v1/` (or after the Azure deployment): "chat/completions"
    deployment: str | None = None  # Azure: stands in for the model when the body names none


def parse_path(path: str) -> Target | None:
    """`/v1/x`, `/{upstream}/v1/x`, `[/{upstream}]/openai/deployments/{deployment}/x`,
    `[/{upstream}]/openai/responses/…` (Azure keeps responses per resource, not per deployment); else None."""
    segments = path.strip("/").split("/")
    if len(segments) >= 2 and segments[0] == "v1":
        return Target(DEFAULT_UPSTREAM, "/".join(segments[1:]))
    if len(segments) >= 3 and segments[1] == "v1":
        return Target(segments[0], "/".join(segments[2:]))
    if len(segments) >= 3 and segments[0:2] == ["openai", "responses"]:
        return Target(DEFAULT_UPSTREAM, "/".join(segments[1:]))
    if len(segments) >= 4 and segments[1:3] == ["openai", "responses"]:
        return Target(segments[0], "/".join(segments[2:]))
    if len(segments) >= 4 and segments[0:2] == ["openai", "deployments"]:
        return _azure(DEFAULT_UPSTREAM, segments[2], segments[3:])
    if len(segments) >= 5 and segments[1:3] == ["openai", "deployments"]:
        return _azure(segments[0], segments[3], segments[4:])
    return None


def _azure(upstream: str, deployment: str, rest: list[str]) -> Target | None:
    endpoint = "/".join(rest)
    return Target(upstream, endpoint, deployment) if endpoint in AZURE_ENDPOINTS else None
