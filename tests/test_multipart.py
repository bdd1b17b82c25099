"""Multipart edits are read in place: fields decoded, files located, bytes untouched."""

from __future__ import annotations

import httpx
import pytest

from proxy.errors import InvalidRequest
from proxy.http.multipart import parse_multipart

PNG_A = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
PNG_B = b"\x89PNG\r\n\x1a\n" + b"\r\n--not-a-boundary\r\n" * 50
MASK = b"\x89PNG\r\n\x1a\nmask-bytes"


def encoded(fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[bytes, str]:
    """A body as the OpenAI SDK's HTTP client encodes it."""
    request = httpx.Request("POST", "http://x/v1/images/edits", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def test_fields_and_files_are_found_and_file_bytes_are_exact():
    raw, content_type = encoded(
        {"model": "gpt-image-2", "prompt": "make the sky purple", "n": "2", "stream": "false"},
        [
            ("image[]", ("a.png", PNG_A, "image/png")),
            ("image[]", ("b.png", PNG_B, "image/png")),
            ("mask", ("mask.png", MASK, "image/png")),
        ],
    )
    body = parse_multipart(raw, content_type)
    assert body.fields == {"model": "gpt-image-2", "prompt": "make the sky purple", "n": "2", "stream": "false"}
    assert [(f.field, f.filename, f.content_type) for f in body.files] == [
        ("image[]", "a.png", "image/png"),
        ("image[]", "b.png", "image/png"),
        ("mask", "mask.png", "image/png"),
    ]
    assert [body.file_bytes(f) for f in body.files] == [PNG_A, PNG_B, MASK]


def test_renaming_the_model_changes_only_the_model_field():
    raw, content_type = encoded({"model": "gpt-image-2", "prompt": "p"}, [("image", ("a.png", PNG_A, "image/png"))])
    body = parse_multipart(raw, content_type)
    assert body.for_model("gpt-image-2") is raw
    renamed = body.for_model("my-azure-deployment")
    assert renamed == raw.replace(b"gpt-image-2", b"my-azure-deployment", 1)
    again = parse_multipart(renamed, content_type)
    assert again.fields["model"] == "my-azure-deployment"
    assert again.file_bytes(again.files[0]) == PNG_A


@pytest.mark.parametrize(
    ("content_type", "raw", "problem"),
    [
        ("multipart/form-data", b"--x\r\n", "no boundary"),
        ("multipart/form-data; boundary=x", b"hello", "does not contain its boundary"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue',
            "ends before",
        ),
        ("multipart/form-data; boundary=x", b"--x\r\nno-blank-line", "no header block"),
    ],
)
def test_malformed_bodies_are_400s_that_say_what_is_wrong(content_type, raw, problem):
    with pytest.raises(InvalidRequest) as caught:
        parse_multipart(raw, content_type)
    assert caught.value.status == 400 and problem in caught.value.message
