"""The simulator in-process: its modules directly, and its ASGI app through httpx's
ASGI transport. Streams cut mid-body are covered by tests/e2e/test_simulator_e2e.py,
which needs a real socket to drop."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from PIL import Image
from starlette.types import Message

from providers.image_tokens import image_input_tokens, image_output_tokens, text_tokens
from providers.simulator import create_app
from providers.simulator.app import Simulator
from providers.simulator.errors import SimError
from providers.simulator.faults import FaultBook, apply_output_fault
from providers.simulator.images import ImageCache, ImageSpec, OutputFormat
from providers.simulator.markers import marker_texts, parse_marker, request_markers, strip_markers
from providers.simulator.paths import Target, parse_path
from providers.simulator.replies import BodyReply, Delivery, StreamReply, transmit

AUTH = {"Authorization": "Bearer sk-test"}


# ---- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def app() -> Simulator:
    return create_app()


@pytest.fixture
async def client(app: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers=AUTH) as http:
        yield http


def decode(b64: str) -> Image.Image:
    picture = Image.open(io.BytesIO(base64.b64decode(b64)))
    picture.load()
    return picture


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each frame."""
    events = []
    for frame in body.decode().split("\n\n"):
        if not frame:
            continue
        name, data = None, ""
        for line in frame.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
        events.append((name, data))
    return events


def chat(text: str) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": [{"role": "user", "content": text}]}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


# ---- markers ----------------------------------------------------------------------------------


def test_marker_parses_every_key() -> None:
    marker = parse_marker(
        " fault=rate_limit  times=2 upstream=acme retry_after=0.5 delay=1.5 interval=0.1 id=t42 ", source="test"
    )
    assert marker.text == "fault=rate_limit times=2 upstream=acme retry_after=0.5 delay=1.5 interval=0.1 id=t42"
    assert (marker.fault, marker.times, marker.upstream) == ("rate_limit", 2, "acme")
    assert (marker.retry_after, marker.delay, marker.interval, marker.wait) == (0.5, 1.5, 0.1, 1.5)


def test_marker_defaults() -> None:
    timeout = parse_marker("fault=timeout", source="test")
    assert (timeout.times, timeout.upstream, timeout.retry_after, timeout.interval, timeout.wait) == (
        None,
        None,
        1.0,
        0.0,
        60.0,
    )
    assert parse_marker("fault=server_error", source="test").wait == 0.0
    assert parse_marker("fault=timeout delay=0.2", source="test").wait == 0.2


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("fualt=timeout", "'fualt'"),
        ("fault=explode", "'explode'"),
        ("fault", "'fault'"),
        ("times=once", "'times'"),
        ("times=-1", "'times'"),
        ("retry_after=soon", "'retry_after'"),
        ("delay=-1", "'delay'"),
        ("interval=nan", "'interval'"),
        ("id=a id=b", "'id'"),
    ],
)
def test_bad_marker_is_a_400_naming_the_problem(spec: str, named: str) -> None:
    with pytest.raises(SimError) as raised:
        parse_marker(spec, source=f"[sim {spec}]")
    assert raised.value.status == 400
    assert named in raised.value.message
    assert raised.value.code == "invalid_simulator_marker"


def test_markers_are_found_where_request_text_lives() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief [sim fault=server_error id=a]"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi [sim fault=unavailable id=b]"},
                    {"type": "image_url", "image_url": {"url": "data:,[sim fault=timeout id=hidden]"}},
                ],
            },
        ],
        "input": ["x [sim id=c]", {"role": "user", "content": [{"type": "input_text", "text": "[sim id=d]"}]}],
        "prompt": "[sim id=e]",
        "user": "[sim id=not-a-text-field]",
    }
    found = request_markers("fault=rate_limit id=header", body)
    assert [marker.source for marker in found][:2] == [
        "header x-sim: fault=rate_limit id=header",
        "[sim fault=server_error id=a]",
    ]
    texts = [marker.text for marker in found]
    assert texts == [
        "fault=rate_limit id=header",
        "fault=server_error id=a",
        "fault=unavailable id=b",
        "id=c",
        "id=d",
        "id=e",
    ]
    assert list(marker_texts({"prompt": "[simulate] no marker"})) == ["[simulate] no marker"]
    assert request_markers(None, {"prompt": "[simulate] no marker"}) == []


def test_unterminated_marker_is_a_400() -> None:
    with pytest.raises(SimError) as raised:
        request_markers(None, {"prompt": "a cat [sim id=ok] then [sim fault=timeout"})
    assert raised.value.status == 400
    assert "Unterminated simulator marker '[sim fault=timeout'" in raised.value.message


def test_repeated_marker_counts_once_per_request() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "[sim fault=server_error times=1]"},
            {"role": "user", "content": "again [sim  fault=server_error   times=1]"},
        ]
    }
    assert len(request_markers(None, body)) == 1


def test_strip_markers() -> None:
    assert strip_markers("a cat [sim fault=timeout id=1] on a mat") == "a cat on a mat"


# ---- fault counting and damage -----------------------------------------------------------------


def test_times_counts_per_marker_and_upstream() -> None:
    book = FaultBook()
    markers = [parse_marker("fault=server_error times=1 id=t42", source="t")]
    assert book.select(markers, "openai") is not None
    assert book.select(markers, "openai") is None
    assert book.select(markers, "acme") is not None  # counted apart
    assert book.select(markers, "acme") is None
    book.reset()
    assert book.select(markers, "openai") is not None


def test_upstream_targeting_and_first_applicable_marker_wins() -> None:
    book = FaultBook()
    markers = [
        parse_marker("fault=server_error upstream=openai times=1", source="t"),
        parse_marker("fault=rate_limit upstream=acme", source="t"),
        parse_marker("fault=unavailable times=1", source="t"),
    ]

    def fault_for(upstream: str) -> str | None:
        marker = book.select(markers, upstream)
        return marker.fault if marker else None

    assert [fault_for("openai") for _ in range(3)] == ["server_error", "unavailable", None]
    assert fault_for("acme") == "rate_limit"
    assert fault_for("default") == "unavailable"


def test_cut_and_malformed_damage_replies() -> None:
    frames = [f"data: {index}\n\n".encode() for index in range(6)]
    stream = StreamReply(frames)
    cut = apply_output_fault(parse_marker("fault=cut_stream interval=0.5", source="t"), stream)
    assert isinstance(cut, StreamReply) and cut.cut and list(cut.frames) == frames[:3] and cut.interval == 0.5
    broken = apply_output_fault(parse_marker("fault=malformed", source="t"), stream)
    assert isinstance(broken, StreamReply) and not broken.cut and list(broken.frames[:3]) == frames[:3]
    with pytest.raises(ValueError):
        orjson.loads(broken.frames[-1].removeprefix(b"data: "))

    body = BodyReply(200, b'{"object": "chat.completion", "choices": []}')
    short = apply_output_fault(parse_marker("fault=cut_stream", source="t"), body)
    assert isinstance(short, BodyReply) and short.declared_length == len(body.body) > len(short.body)
    invalid = apply_output_fault(parse_marker("fault=malformed", source="t"), body)
    assert isinstance(invalid, BodyReply) and invalid.status == 200
    with pytest.raises(ValueError):
        orjson.loads(invalid.body)


async def test_transmit_leaves_a_cut_body_unfinished() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await transmit(send, StreamReply([b"data: 1\n\n"], cut=True), [])
    assert [message.get("more_body") for message in sent[1:]] == [True]
    sent.clear()
    await transmit(send, BodyReply(200, b"{}", declared_length=10), [])
    assert (b"content-length", b"10") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": b"{}", "more_body": True}


async def test_a_paced_stream_stops_when_its_client_hangs_up() -> None:
    sent: list[Message] = []
    hang_up = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if len(sent) == 3:  # the start and two frames: the client has read enough
            hang_up.set()

    async def receive() -> Message:
        await hang_up.wait()
        return {"type": "http.disconnect"}

    frames = [f"data: {index}\n\n".encode() for index in range(6)]
    before = time.time()
    delivery = await transmit(send, StreamReply(frames, interval=0.2), [], receive)
    assert delivery is not None and (delivery.events, delivery.sent) == (6, 2)
    assert delivery.client_closed_at is not None and 0 <= delivery.client_closed_at - before < 0.3
    assert [message.get("body") for message in sent[1:]] == frames[:2]  # and nothing after


async def test_a_stream_whose_client_stays_is_sent_whole() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    delivery = await transmit(send, StreamReply([b"data: 1\n\n", b"data: 2\n\n"], interval=0.01), [], receive)
    assert delivery == Delivery(events=2, sent=2)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


# ---- paths --------------------------------------------------------------------------------------


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


# ---- image bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("output_format", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_cached_images_decode_in_the_requested_format_and_size(
    output_format: OutputFormat, pil_format: str
) -> None:
    cache = ImageCache()
    spec = ImageSpec.of(output_format, 1536, 864, 80, False)
    encoded = await cache.get(spec)
    assert await cache.get(ImageSpec.of(output_format, 1536, 864, 78, False)) is encoded  # same bucket
    picture = decode(encoded.b64.decode())
    assert (picture.format, picture.size) == (pil_format, (1536, 864))
    assert base64.b64decode(encoded.b64) == encoded.data


async def test_jpeg_compression_changes_the_bytes() -> None:
    cache = ImageCache()
    small = await cache.get(ImageSpec.of("jpeg", 512, 512, 10, False))
    large = await cache.get(ImageSpec.of("jpeg", 512, 512, 100, False))
    assert len(small.data) < len(large.data)


async def test_transparent_png_has_a_transparent_background() -> None:
    encoded = await ImageCache().get(ImageSpec.of("png", 1024, 1024, 100, True))
    picture = decode(encoded.b64.decode())
    assert picture.mode == "RGBA"
    alpha = picture.getchannel("A")
    assert alpha.getpixel((400, 5)) == 0
    assert alpha.getpixel((512, 512)) == 255


async def test_image_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = ImageCache(max_entries=2)
    specs = [ImageSpec.of("jpeg", 64 * size, 64, 50, False) for size in (1, 2, 3)]
    first = await cache.get(specs[0])
    await cache.get(specs[1])
    await cache.get(specs[2])
    assert len(cache) == 2
    assert await cache.get(specs[0]) is not first  # evicted, rendered again
    tiny = ImageCache(max_bytes=1)
    await tiny.get(specs[0])
    await tiny.get(specs[1])
    assert len(tiny) == 1  # the newest is always kept


# ---- auth, routing, headers, request log ------------------------------------------------------


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


async def test_request_log_records_what_reached_the_upstream(client: httpx.AsyncClient) -> None:
    await client.post(
        "/openai/v1/chat/completions",
        json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-openai-key", "X-Trace": "t1"},
    )
    await client.post(
        "/acme/openai/deployments/acme-image/images/edits?api-version=2025-04-01",
        data={"prompt": "edit"},
        files=[
            ("image[]", ("a.png", png_bytes(64, 64), "image/png")),
            ("image[]", ("b.png", png_bytes(32, 32), "image/png")),
        ],
        headers={"Authorization": "", "api-key": "acme-key"},
    )
    log = (await client.get("/_sim/requests")).json()["requests"]
    chat, edit = log
    assert chat["headers"]["authorization"] == "Bearer sk-openai-key"
    assert chat["headers"]["x-trace"] == "t1"
    assert (chat["upstream"], chat["model"], chat["endpoint"], chat["status"]) == (
        "openai",
        "gpt-4.1",
        "chat/completions",
        200,
    )
    assert chat["body_size"] == int(chat["headers"]["content-length"])
    assert (edit["upstream"], edit["model"], edit["query"]) == ("acme", "acme-image", "api-version=2025-04-01")
    assert edit["headers"]["api-key"] == "acme-key"
    assert edit["content_type"].startswith("multipart/form-data")
    assert edit["multipart"]["fields"] == ["prompt", "image[]", "image[]"]
    assert edit["fields"] == {"prompt": "edit"}
    assert chat["fields"] == {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    assert [(part["field"], part["filename"]) for part in edit["multipart"]["files"]] == [
        ("image[]", "a.png"),
        ("image[]", "b.png"),
    ]
    only_acme = (await client.get("/_sim/requests", params={"upstream": "acme"})).json()["requests"]
    assert [entry["request_id"] for entry in only_acme] == [edit["request_id"]]
    assert (await client.post("/_sim/reset")).status_code == 200
    assert (await client.get("/_sim/requests")).json()["requests"] == []


async def test_request_log_leaves_out_large_json_bodies(client: httpx.AsyncClient) -> None:
    big = "x" * 40_000 + " [sim id=big]"
    await client.post("/v1/chat/completions", json=chat(big))
    [entry] = (await client.get("/_sim/requests")).json()["requests"]
    assert entry["fields"] is None and entry["body_size"] > 40_000
    assert entry["markers"] == ["[sim id=big]"]


async def test_request_log_is_bounded() -> None:
    app = Simulator(log_limit=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as http:
        for _ in range(5):
            await http.get("/v1/models")
        assert len((await http.get("/_sim/requests")).json()["requests"]) == 3


# ---- images API ---------------------------------------------------------------------------------


async def test_generation_returns_real_images_and_exact_usage(client: httpx.AsyncClient) -> None:
    prompt = "a lighthouse at dusk, oil painting"
    response = await client.post(
        "/v1/images/generations",
        json={
            "model": "gpt-image-2",
            "prompt": prompt,
            "n": 3,
            "size": "1536x864",
            "quality": "high",
            "output_format": "jpeg",
            "output_compression": 60,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["background"], body["output_format"], body["quality"], body["size"]) == (
        "opaque",
        "jpeg",
        "high",
        "1536x864",
    )
    assert len(body["data"]) == 3
    for item in body["data"]:
        assert set(item) == {"b64_json"}
        picture = decode(item["b64_json"])
        assert (picture.format, picture.size) == ("JPEG", (1536, 864))
    output = image_output_tokens("gpt-image-2", "1536x864", "high") * 3
    assert body["usage"] == {
        "input_tokens": text_tokens(prompt),
        "input_tokens_details": {"text_tokens": text_tokens(prompt), "image_tokens": 0},
        "output_tokens": output,
        "total_tokens": text_tokens(prompt) + output,
    }
    assert "output_tokens_details" not in body["usage"]


async def test_generation_resolves_auto_and_defaults(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "x", "quality": "auto", "size": "auto", "background": "auto"},
        )
    ).json()
    assert (body["quality"], body["size"], body["background"], body["output_format"]) == (
        "medium",
        "1024x1024",
        "opaque",
        "png",
    )
    assert body["usage"]["output_tokens"] == 1756
    picture = decode(body["data"][0]["b64_json"])
    assert (picture.format, picture.size) == ("PNG", (1024, 1024))


async def test_legacy_model_uses_the_fixed_table_and_allows_transparency(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/images/generations",
            json={
                "model": "gpt-image-1.5",
                "prompt": "a logo",
                "size": "1024x1536",
                "quality": "low",
                "background": "transparent",
                "output_format": "webp",
            },
        )
    ).json()
    assert body["usage"]["output_tokens"] == 408
    assert body["background"] == "transparent"
    picture = decode(body["data"][0]["b64_json"])
    assert (picture.format, picture.size, picture.mode) == ("WEBP", (1024, 1536), "RGBA")


@pytest.mark.parametrize(
    ("fields", "status", "param", "code", "message"),
    [
        (
            {"size": "1000x1000"},
            400,
            "size",
            "invalid_value",
            "Invalid size '1000x1000'. Width and height must both be divisible by 16.",
        ),
        ({"model": "gpt-image-1", "size": "2048x2048"}, 400, "size", "invalid_value", None),
        ({"n": 11}, 400, "n", "integer_above_max_value", None),
        ({"n": 0}, 400, "n", "integer_below_min_value", None),
        (
            {"response_format": "b64_json"},
            400,
            "response_format",
            "unknown_parameter",
            "Unknown parameter: 'response_format'.",
        ),
        (
            {"background": "transparent"},
            400,
            "background",
            "invalid_value",
            "Transparent background is not supported for this model.",
        ),
        ({"quality": "ultra"}, 400, "quality", "invalid_value", None),
        ({"output_format": "gif"}, 400, "output_format", "invalid_value", None),
        ({"partial_images": 4}, 400, "partial_images", "integer_above_max_value", None),
        ({"prompt": None}, 400, "prompt", "missing_required_parameter", None),
    ],
)
async def test_generation_refusals(
    client: httpx.AsyncClient, fields: dict[str, Any], status: int, param: str, code: str, message: str | None
) -> None:
    response = await client.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p", **fields})
    error = error_of(response)
    assert (response.status_code, error["param"], error["code"]) == (status, param, code)
    if message is not None:
        assert error["message"] == message
    if param == "size":
        assert error["type"] == "image_generation_user_error"


async def test_generation_stream_events(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a fox", "stream": True, "partial_images": 2, "quality": "low"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    assert [name for name, _ in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    payloads = [orjson.loads(data) for _, data in events]
    assert [payload["type"] for payload in payloads] == [name for name, _ in events]
    assert [payload["partial_image_index"] for payload in payloads[:2]] == [0, 1]
    completed = payloads[-1]
    assert completed["usage"]["output_tokens"] == 196 + 2 * 100
    assert completed["usage"]["input_tokens"] == text_tokens("a fox")
    assert decode(completed["b64_json"]).size == (1024, 1024)
    assert b"[DONE]" not in response.content


async def test_stream_with_n_images_sums_to_the_request_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "two foxes", "stream": True, "n": 2, "quality": "low"},
    )
    completed = [
        orjson.loads(data) for name, data in sse_events(response.content) if name == "image_generation.completed"
    ]
    assert len(completed) == 2
    assert sum(event["usage"]["output_tokens"] for event in completed) == 2 * 196
    assert sum(event["usage"]["input_tokens"] for event in completed) == text_tokens("two foxes")


async def test_edit_counts_input_images_and_keeps_the_first_images_shape(client: httpx.AsyncClient) -> None:
    first, second = png_bytes(1200, 800), png_bytes(300, 300)
    mask = png_bytes(1200, 800, "RGBA")
    response = await client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "make it blue"},
        files=[
            ("image[]", ("a.png", first, "image/png")),
            ("image[]", ("b.png", second, "image/png")),
            ("mask", ("m.png", mask, "image/png")),
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == "1200x800"
    assert decode(body["data"][0]["b64_json"]).size == (1200, 800)
    image_tokens = image_input_tokens(1200, 800) + image_input_tokens(300, 300)
    assert body["usage"]["input_tokens_details"] == {
        "text_tokens": text_tokens("make it blue"),
        "image_tokens": image_tokens,
    }
    assert body["usage"]["output_tokens"] == image_output_tokens("gpt-image-2", "1200x800", "medium")


async def test_edit_with_a_legacy_model_picks_the_nearest_standard_size(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-1", "prompt": "p", "quality": "high"},
        files={"image": ("a.png", png_bytes(600, 900), "image/png")},
    )
    body = response.json()
    assert (body["size"], body["usage"]["output_tokens"]) == ("1024x1536", 6240)


async def test_edit_refuses_bad_masks_and_files(client: httpx.AsyncClient) -> None:
    image = ("image", ("a.png", png_bytes(64, 64), "image/png"))
    wrong_size = await client.post(
        "/v1/images/edits",
        data={"prompt": "p"},
        files=[image, ("mask", ("m.png", png_bytes(32, 32, "RGBA"), "image/png"))],
    )
    assert error_of(wrong_size)["code"] == "invalid_mask_image_format"
    assert error_of(wrong_size)["message"] == "Invalid mask image format - mask size does not match image size"
    not_an_image = await client.post(
        "/v1/images/edits", data={"prompt": "p"}, files={"image": ("a.png", b"not an image", "image/png")}
    )
    assert (not_an_image.status_code, error_of(not_an_image)["param"]) == (400, "image")
    no_image = await client.post("/v1/images/edits", data={"prompt": "p"}, files={"mask": ("m.png", b"x")})
    assert error_of(no_image)["code"] == "missing_required_parameter"
    fidelity = await client.post(
        "/v1/images/edits", data={"prompt": "p", "model": "gpt-image-2", "input_fidelity": "high"}, files=[image]
    )
    assert error_of(fidelity)["code"] == "invalid_input_fidelity_model"


async def test_edit_stream_uses_image_edit_events(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/edits",
        data={"prompt": "p", "stream": "true", "partial_images": "1"},
        files={"image": ("a.png", png_bytes(1024, 1024), "image/png")},
    )
    assert [name for name, _ in sse_events(response.content)] == ["image_edit.partial_image", "image_edit.completed"]


async def test_json_edit_with_data_urls(client: httpx.AsyncClient) -> None:
    url = "data:image/png;base64," + base64.b64encode(png_bytes(1024, 1536)).decode()
    body = (
        await client.post(
            "/v1/images/edits", json={"model": "gpt-image-2", "prompt": "p", "images": [{"image_url": url}]}
        )
    ).json()
    assert body["size"] == "1024x1536"
    assert body["usage"]["input_tokens_details"]["image_tokens"] == image_input_tokens(1024, 1536)


# ---- Responses ---------------------------------------------------------------------------------


async def test_responses_refuses_an_image_model(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/responses", json={"model": "gpt-image-2", "input": "draw"})
    error = error_of(response)
    assert response.status_code == 400
    assert (error["type"], error["param"]) == ("invalid_request_error", "model")
    assert error["message"] == "The requested model 'gpt-image-2' is not supported with the Responses API."


async def test_responses_text_only(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/responses", json={"model": "gpt-5.4", "input": "tell me a joke"})).json()
    assert (body["object"], body["status"], body["model"]) == ("response", "completed", "gpt-5.4")
    assert body["id"].startswith("resp_")
    [message] = body["output"]
    assert message["type"] == "message"
    assert "tell me a joke" in message["content"][0]["text"]
    assert body["usage"]["input_tokens"] == text_tokens("tell me a joke")
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 0
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    assert "tool_usage" not in body


async def test_responses_image_tool_reports_tool_usage_apart(client: httpx.AsyncClient) -> None:
    reference = "data:image/png;base64," + base64.b64encode(png_bytes(800, 600)).decode()
    prompt = "make this a watercolor"
    body = (
        await client.post(
            "/v1/responses",
            json={
                "model": "gpt-5.4",
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": prompt},
                            {"type": "input_image", "image_url": reference},
                        ],
                    }
                ],
                "tools": [
                    {"type": "image_generation", "size": "1536x1024", "quality": "high", "output_format": "webp"}
                ],
            },
        )
    ).json()
    call, message = body["output"]
    assert call["type"] == "image_generation_call" and call["status"] == "completed"
    assert call["id"].startswith("ig_")
    assert (call["size"], call["quality"], call["output_format"], call["background"]) == (
        "1536x1024",
        "high",
        "webp",
        "opaque",
    )
    assert call["revised_prompt"] == prompt
    picture = decode(call["result"])
    assert (picture.format, picture.size) == ("WEBP", (1536, 1024))
    assert message["type"] == "message"
    image_gen = body["tool_usage"]["image_gen"]
    assert image_gen["input_tokens_details"] == {
        "image_tokens": image_input_tokens(800, 600),
        "text_tokens": text_tokens(prompt),
    }
    assert image_gen["output_tokens"] == 5488
    assert image_gen["output_tokens_details"] == {"image_tokens": 5488, "text_tokens": 0}
    assert image_gen["total_tokens"] == image_gen["input_tokens"] + 5488
    assert body["usage"]["output_tokens"] == text_tokens(message["content"][0]["text"])


async def test_responses_tool_defaults_and_size_errors(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/responses", json={"model": "gpt-5.4", "input": "a cat", "tools": [{"type": "image_generation"}]}
        )
    ).json()
    call = body["output"][0]
    assert (call["size"], call["quality"]) == ("1024x1024", "medium")
    assert body["tool_usage"]["image_gen"]["output_tokens"] == 1756
    bad = await client.post(
        "/v1/responses",
        json={"model": "gpt-5.4", "input": "a cat", "tools": [{"type": "image_generation", "size": "1000x1000"}]},
    )
    assert (bad.status_code, error_of(bad)["param"]) == (400, "tools")


async def test_responses_stream_sequence(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/responses",
        json={
            "model": "gpt-5.4",
            "input": "a cat",
            "stream": True,
            "tools": [{"type": "image_generation", "quality": "low", "partial_images": 2}],
        },
    )
    events = [(name, orjson.loads(data)) for name, data in sse_events(response.content)]
    names = [name for name, _ in events]
    assert names[:8] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.image_generation_call.in_progress",
        "response.image_generation_call.generating",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.partial_image",
        "response.image_generation_call.completed",
    ]
    assert "response.output_text.delta" in names and names[-1] == "response.completed"
    assert all(payload["type"] == name for name, payload in events)
    assert [payload["sequence_number"] for _, payload in events] == list(range(len(events)))
    final = events[-1][1]["response"]
    assert final["tool_usage"]["image_gen"]["output_tokens"] == 196 + 2 * 100
    deltas = "".join(payload["delta"] for name, payload in events if name == "response.output_text.delta")
    assert deltas == final["output"][1]["content"][0]["text"]
    assert b"[DONE]" not in response.content


# ---- chat and embeddings -------------------------------------------------------------------------


async def test_chat_completion(client: httpx.AsyncClient) -> None:
    messages = [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": [{"type": "text", "text": "what is a tollgate"}]},
    ]
    body = (await client.post("/v1/chat/completions", json={"model": "gpt-4.1", "messages": messages})).json()
    assert body["object"] == "chat.completion"
    text = body["choices"][0]["message"]["content"]
    assert "what is a tollgate" in text
    assert body["usage"]["prompt_tokens"] == text_tokens("be terse") + text_tokens("what is a tollgate")
    assert body["usage"]["completion_tokens"] == text_tokens(text)
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


async def test_chat_stream_with_usage(client: httpx.AsyncClient) -> None:
    request = {"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "hello simulator"}]}
    plain = sse_events((await client.post("/v1/chat/completions", json=request)).content)
    with_usage = sse_events(
        (await client.post("/v1/chat/completions", json={**request, "stream_options": {"include_usage": True}})).content
    )
    assert plain[-1] == (None, "[DONE]") and with_usage[-1] == (None, "[DONE]")
    chunks = [orjson.loads(data) for _, data in with_usage[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks[:-1])
    assert "hello simulator" in text
    assert len(plain) == len(with_usage) - 1


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


# ---- faults through the app ----------------------------------------------------------------------


async def test_fault_times_one_fails_once_then_succeeds(client: httpx.AsyncClient) -> None:
    request = chat("hi [sim fault=server_error times=1 id=t42]")
    first = await client.post("/openai/v1/chat/completions", json=request)
    second = await client.post("/openai/v1/chat/completions", json=request)
    other_upstream = await client.post("/acme/v1/chat/completions", json=request)
    assert (first.status_code, second.status_code, other_upstream.status_code) == (500, 200, 500)
    assert error_of(first)["type"] == "server_error"
    log = (await client.get("/_sim/requests")).json()["requests"]
    assert [entry["fault"] for entry in log] == ["server_error", None, "server_error"]
    assert log[0]["marker"] == "fault=server_error times=1 id=t42"
    assert log[1]["markers"] == ["[sim fault=server_error times=1 id=t42]"]  # found, though spent
    assert log[1]["fields"] == request


async def test_fault_upstream_targeting(client: httpx.AsyncClient) -> None:
    request = chat("[sim fault=unavailable upstream=openai]")
    openai = await client.post("/openai/v1/chat/completions", json=request)
    acme = await client.post("/acme/v1/chat/completions", json=request)
    assert (openai.status_code, acme.status_code) == (503, 200)
    assert error_of(openai)["message"] == "The server is overloaded or not ready yet."


async def test_rate_limit_carries_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "[sim fault=rate_limit retry_after=2.5]"}
    )
    assert response.status_code == 429
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2.5", "2500")
    assert (error_of(response)["code"], error_of(response)["type"]) == ("rate_limit_exceeded", "requests")


async def test_moderation_and_invalid_size_faults(client: httpx.AsyncClient) -> None:
    moderated = await client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "[sim fault=moderation]"}
    )
    error = error_of(moderated)
    assert (moderated.status_code, error["type"], error["code"]) == (
        400,
        "image_generation_user_error",
        "moderation_blocked",
    )
    assert error["message"].startswith("Your request was rejected by the safety system.")
    assert moderated.headers["x-request-id"] in error["message"]
    assert error["moderation_details"]["moderation_stage"] == "input"
    sized = await client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "[sim fault=invalid_size]", "size": "1024x1024"},
    )
    assert (sized.status_code, error_of(sized)["param"], error_of(sized)["code"]) == (400, "size", "invalid_value")


async def test_fault_from_header_and_bad_marker(client: httpx.AsyncClient) -> None:
    by_header = await client.post("/v1/chat/completions", json=chat("hi"), headers={"x-sim": "fault=unavailable"})
    assert by_header.status_code == 503
    typo = await client.post("/v1/chat/completions", json=chat("hi [sim fualt=timeout]"))
    assert typo.status_code == 400 and "'fualt'" in error_of(typo)["message"]
    typo_header = await client.post("/v1/embeddings", json={"model": "m", "input": "x"}, headers={"x-sim": "times=x"})
    assert (typo_header.status_code, error_of(typo_header)["param"]) == (400, "x-sim")


async def test_delay_slows_a_normal_answer(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json=chat("[sim delay=0.3]"))
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


async def test_malformed_body_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat("[sim fault=malformed]"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


async def test_faulted_requests_still_need_credentials(app: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as bare:
        response = await bare.post("/v1/chat/completions", json=chat("[sim fault=server_error times=1]"))
    assert response.status_code == 401
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as authed:
        assert (
            await authed.post("/v1/chat/completions", json=chat("[sim fault=server_error times=1]"))
        ).status_code == 500


# ---- speed ---------------------------------------------------------------------------------------


async def _cpu_per_request(app: Simulator, path: str, body: bytes, rounds: int = 300) -> float:
    """Server CPU seconds per request, driving the ASGI app directly (no client costs)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [(b"authorization", b"Bearer sk-test"), (b"content-type", b"application/json")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200

    await app(scope, receive, send)  # warm the image cache
    started = time.process_time()
    for _ in range(rounds):
        await app(scope, receive, send)
    return (time.process_time() - started) / rounds


async def test_chat_and_cached_images_cost_well_under_a_millisecond_of_cpu(app: Simulator) -> None:
    chat_cpu = await _cpu_per_request(app, "/v1/chat/completions", orjson.dumps(chat("hello there")))
    image_cpu = await _cpu_per_request(
        app,
        "/v1/images/generations",
        orjson.dumps({"model": "gpt-image-2", "prompt": "a cat", "size": "1024x1024", "quality": "low"}),
    )
    assert chat_cpu < 0.0005, chat_cpu
    assert image_cpu < 0.0005, image_cpu


async def test_concurrent_cache_misses_do_not_block_each_other(app: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim", headers=AUTH) as http:
        sizes = ["1024x1024", "1536x1024", "1024x1536"]
        responses = await asyncio.gather(
            *(
                http.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p", "size": size})
                for size in sizes
            )
        )
    assert [response.json()["size"] for response in responses] == sizes
