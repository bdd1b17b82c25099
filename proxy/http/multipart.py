"""Reading a multipart/form-data body (image edits) without re-encoding it.

The whole body is held anyway (a retry or a fallback sends it again), so the
parts are found in place with `bytes.find`: the text fields are decoded, the
files are only located, and their bytes go upstream exactly as the client sent them.
"""

from __future__ import annotations

import re

from providers.types import MultipartBody, UploadedFile

from ..errors import InvalidRequest

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_PARAM = re.compile(r';\s*(name|filename)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))', re.IGNORECASE)
_MAX_FIELD_BYTES = 64 * 1024  # text fields are settings and prompts, not payloads


def parse_multipart(raw: bytes, content_type: str) -> MultipartBody:
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise _malformed("the Content-Type has no boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    next_part = b"\r\n" + delimiter

    position = raw.find(delimiter)
    if position < 0:
        raise _malformed("the body does not contain its boundary")
    fields: dict[str, str] = {}
    files: list[UploadedFile] = []
    model_span: tuple[int, int] | None = None
    while True:
        position += len(delimiter)
        if raw.startswith(b"--", position):
            break  # the closing delimiter
        headers_start = raw.find(b"\r\n", position)
        headers_end = raw.find(b"\r\n\r\n", headers_start)
        if headers_start < 0 or headers_end < 0:
            raise _malformed("a part has no header block")
        name, filename, part_type = _part_headers(raw[headers_start + 2 : headers_end])
        start = headers_end + 4
        end = raw.find(next_part, start)
        if end < 0:
            raise _malformed("the body ends before its closing boundary")
        if name is None:
            raise _malformed("a part has no Content-Disposition name")
        if filename is None and part_type is None:
            if end - start > _MAX_FIELD_BYTES:
                raise InvalidRequest(f"the form field '{name}' is over 64 KiB; send files as file parts", param=name)
            fields[name] = raw[start:end].decode("utf-8", errors="replace")
            if name == "model":
                model_span = (start, end)
        else:
            files.append(UploadedFile(field=name, filename=filename, content_type=part_type, start=start, end=end))
        position = end + 2
    return MultipartBody(raw=raw, content_type=content_type, fields=fields, files=tuple(files), model_span=model_span)


def _part_headers(block: bytes) -> tuple[str | None, str | None, str | None]:
    name = filename = content_type = None
    for line in block.decode("utf-8", errors="replace").split("\r\n"):
        header, _, value = line.partition(":")
        header = header.strip().lower()
        if header == "content-disposition":
            for param in _PARAM.finditer(value):
                text = param.group(2) if param.group(2) is not None else param.group(3)
                if param.group(1).lower() == "name":
                    name = text.replace('\\"', '"')
                else:
                    filename = text.replace('\\"', '"')
        elif header == "content-type":
            content_type = value.strip()
    return name, filename, content_type


def _malformed(problem: str) -> InvalidRequest:
    return InvalidRequest(
        f"The multipart body could not be read: {problem}. Send multipart/form-data as the OpenAI SDK does "
        "(images.edit with `image` files, an optional `mask` and form fields)."
    )
