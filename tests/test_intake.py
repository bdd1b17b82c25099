"""From an HTTP request to a Call: what is pulled out, and what is refused."""

from __future__ import annotations

import httpx
import orjson
import pytest
from starlette.requests import Request

from providers.types import JsonBody, MultipartBody, Surface
from proxy.errors import BodyTooLarge, InvalidRequest
from proxy.http.intake import read_call


def request_for(body: bytes, content_type: str = "application/json", **headers: str) -> Request:
    """A real Starlette request whose body arrives in two chunks."""
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]

    async def receive():
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    raw_headers = [(b"content-type", content_type.encode())]
    raw_headers += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw_headers}, receive)


async def call_of(surface: Surface, fields: dict, limit: int = 1 << 20, **headers: str):
    return await read_call(request_for(orjson.dumps(fields), **headers), surface, "req_1", max_body_bytes=limit)


async def test_a_generation_keeps_its_bytes_and_exposes_its_settings():
    fields = {"model": "gpt-image-2", "prompt": "p", "size": "1536x1024", "quality": "low", "n": 2, "stream": True}
    call = await call_of(Surface.IMAGES_GENERATE, fields)
    assert isinstance(call.body, JsonBody) and call.body.raw == orjson.dumps(fields)
    assert (call.model, call.stream) == ("gpt-image-2", True)
    assert (call.image.size, call.image.quality, call.image.n) == ("1536x1024", "low", 2)


async def test_the_responses_image_tool_and_input_images_are_read():
    fields = {
        "model": "gpt-5.4",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "edit this"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            }
        ],
        "tools": [{"type": "web_search"}, {"type": "image_generation", "model": "gpt-image-2", "quality": "high"}],
    }
    call = await call_of(Surface.RESPONSES, fields)
    assert (call.image.model, call.image.quality, call.image.input_images) == ("gpt-image-2", "high", 1)


async def test_chat_has_no_image_settings():
    call = await call_of(Surface.CHAT, {"model": "gpt-5.4-mini", "messages": []})
    assert call.image is None and call.stream is False


async def test_a_json_edit_counts_its_image_references():
    call = await call_of(Surface.IMAGES_EDIT, {"model": "gpt-image-2", "images": [{"file_id": "a"}, {"file_id": "b"}]})
    assert call.image.input_images == 2


async def test_a_multipart_edit_finds_its_inputs_and_mask():
    upload = httpx.Request(
        "POST",
        "http://x",
        data={"model": "gpt-image-2", "prompt": "p", "stream": "true"},
        files=[
            ("image[]", ("a.png", b"A" * 10, "image/png")),
            ("image[]", ("b.png", b"B" * 5, "image/png")),
            ("mask", ("m.png", b"M", "image/png")),
        ],
    )
    body = upload.read()
    call = await read_call(
        request_for(body, upload.headers["content-type"]), Surface.IMAGES_EDIT, "r", max_body_bytes=1 << 20
    )
    assert isinstance(call.body, MultipartBody) and call.stream is True
    assert call.image.input_images == 2 and [f.size for f in call.image.inputs] == [10, 5]
    assert call.image.mask.filename == "m.png"


async def test_the_prompt_version_comes_from_the_header_or_metadata():
    by_header = await call_of(Surface.CHAT, {"model": "m", "metadata": {"prompt_version": "v1"}}, x_prompt_version="v2")
    by_metadata = await call_of(Surface.CHAT, {"model": "m", "metadata": {"prompt_version": "v1"}})
    assert (by_header.prompt_version, by_metadata.prompt_version) == ("v2", "v1")


async def test_the_client_may_set_a_shorter_timeout():
    call = await call_of(Surface.CHAT, {"model": "m"}, x_tollgate_timeout_s="2.5")
    assert call.timeout_s == 2.5


async def test_a_body_over_the_limit_is_refused_while_it_is_read():
    with pytest.raises(BodyTooLarge):
        await call_of(Surface.CHAT, {"model": "m", "messages": "x" * 5000}, limit=4096)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": "p"}, "model"),
        ({"model": 5}, "model"),
        ({"model": "m", "n": "two"}, "n"),
        ({"model": "m", "partial_images": [1]}, "partial_images"),
    ],
)
async def test_wrong_fields_are_400s_naming_the_field(fields, param):
    with pytest.raises(InvalidRequest) as caught:
        await call_of(Surface.IMAGES_GENERATE, fields)
    assert caught.value.param == param


# --- every field Tollgate reads has its type, or the request is a 400 naming it -------------------


@pytest.mark.parametrize("options", ["usage", ["include_usage"], 1, True])
async def test_a_streamed_chat_whose_stream_options_is_no_object_is_a_400(options):
    fields = {"model": "m", "messages": [], "stream": True, "stream_options": options}
    with pytest.raises(InvalidRequest) as caught:
        await call_of(Surface.CHAT, fields)
    assert (caught.value.param, caught.value.code) == ("stream_options", "invalid_type")
    assert "Invalid 'stream_options': expected an object, but got" in caught.value.message


@pytest.mark.parametrize(
    ("surface", "fields", "param", "said"),
    [
        (Surface.CHAT, {"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "a boolean"),
        (Surface.CHAT, {"messages": "hi"}, "messages", "an array of objects, but got the string 'hi'"),
        (Surface.CHAT, {"messages": [{"role": "user"}, "hi"]}, "messages[1]", "an object"),
        (Surface.CHAT, {"max_tokens": True}, "max_tokens", "an integer from 1 to 2147483647, but got true"),
        (
            Surface.CHAT,
            {"max_completion_tokens": 0},
            "max_completion_tokens",
            "an integer from 1 to 2147483647, but got 0",
        ),
        (Surface.CHAT, {"stream": "true"}, "stream", "a boolean, but got the string 'true'"),
        (Surface.CHAT, {"metadata": {"prompt_version": 3}}, "metadata.prompt_version", "a string, but got 3"),
        (Surface.RESPONSES, {"input": 5}, "input", "a string or an array of objects, but got 5"),
        (Surface.RESPONSES, {"instructions": ["be brief"]}, "instructions", "a string, but got an array"),
        (Surface.RESPONSES, {"max_output_tokens": 2.5}, "max_output_tokens", "an integer"),
        (Surface.RESPONSES, {"tools": [{"type": "image_generation", "n": "2"}]}, "tools[0].n", "an integer"),
        (Surface.RESPONSES, {"tools": "image_generation"}, "tools", "an array of objects"),
        (Surface.EMBEDDINGS, {"input": {"text": "x"}}, "input", "a string or an array, but got an object"),
        (Surface.IMAGES_GENERATE, {"prompt": None, "n": 2.0}, "n", "an integer"),
        (Surface.IMAGES_GENERATE, {"size": 1024}, "size", "a string, but got 1024"),
        (Surface.IMAGES_GENERATE, {"n": 2**31}, "n", "an integer from 0 to 2147483647, but got 2147483648"),
        (Surface.IMAGES_GENERATE, {"prompt": {"text": "a kite"}}, "prompt", "a string, but got an object"),
        (Surface.IMAGES_EDIT, {"images": [{"file_id": "a"}, "b"]}, "images[1]", "an object"),
    ],
)
async def test_a_field_of_the_wrong_type_is_a_400_naming_it(surface, fields, param, said):
    with pytest.raises(InvalidRequest) as caught:
        await call_of(surface, {"model": "m", **fields})
    assert caught.value.param == param and caught.value.status == 400
    assert f"Invalid '{param}': expected {said}" in caught.value.message


async def test_null_is_taken_as_not_given():
    fields = {"model": "m", "messages": None, "stream": None, "stream_options": None, "max_tokens": None}
    call = await call_of(Surface.CHAT, fields)
    assert call.stream is False and call.max_output_tokens is None
    image = (await call_of(Surface.IMAGES_GENERATE, {"model": "m", "n": None, "partial_images": None})).image
    assert (image.n, image.partial_images) == (1, 0)


async def test_the_output_limit_is_read_once_for_the_estimate():
    assert (await call_of(Surface.CHAT, {"model": "m", "max_tokens": 50})).max_output_tokens == 50
    chat = await call_of(Surface.CHAT, {"model": "m", "max_tokens": 50, "max_completion_tokens": 70})
    assert chat.max_output_tokens == 70
    assert (await call_of(Surface.RESPONSES, {"model": "m", "max_output_tokens": 90})).max_output_tokens == 90


def form(**fields: str) -> tuple[bytes, str]:
    upload = httpx.Request("POST", "http://x", data={"model": "gpt-image-2", **fields}, files=[("image", b"A")])
    return upload.read(), upload.headers["content-type"]


async def test_a_forms_numbers_and_flags_are_read_from_its_text():
    body, content_type = form(n="2", partial_images=" 1 ", stream="TRUE")
    call = await read_call(request_for(body, content_type), Surface.IMAGES_EDIT, "r", max_body_bytes=1 << 20)
    assert (call.image.n, call.image.partial_images, call.stream) == (2, 1, True)


@pytest.mark.parametrize(("fields", "param"), [({"n": "two"}, "n"), ({"n": "-1"}, "n"), ({"stream": "yes"}, "stream")])
async def test_form_text_that_is_no_number_or_flag_is_a_400_naming_it(fields, param):
    body, content_type = form(**fields)
    with pytest.raises(InvalidRequest) as caught:
        await read_call(request_for(body, content_type), Surface.IMAGES_EDIT, "r", max_body_bytes=1 << 20)
    assert caught.value.param == param
