"""The simulator renders an image once and answers every later request for it from its
cache, so its own cost stays out of what a test or a benchmark of the proxy measures.
(Counted in renders, not timed: a timed test fails on a busy machine, not on a change.)"""

from __future__ import annotations

import orjson
from starlette.types import Message

from providers.simulator import images
from providers.simulator.app import Simulator


async def _generate(app: Simulator, body: bytes) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/images/generations",
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer sk-test"), (b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200

    await app(scope, receive, send)


async def test_an_image_is_rendered_once_and_then_answered_from_the_cache(app: Simulator, monkeypatch) -> None:
    renders: list[images.ImageSpec] = []
    render = images.render

    def counted(spec: images.ImageSpec) -> bytes:
        renders.append(spec)
        return render(spec)

    monkeypatch.setattr(images, "render", counted)
    same = orjson.dumps({"model": "gpt-image-2", "prompt": "a cat", "size": "1024x1024", "quality": "low"})
    for _ in range(20):
        await _generate(app, same)
    assert len(renders) == 1
    await _generate(app, orjson.dumps({"model": "gpt-image-2", "prompt": "a cat", "size": "1536x1024"}))
    assert len(renders) == 2 and renders[1].width == 1536
