"""The upstream every row talks to: nginx serving fixed OpenAI-shaped answers to POST,
and the request bodies the load generator sends. Everything is generated at run time
into bench/out/, so the 2 MB image is fresh random bytes and nothing large is committed."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

CHAT_MODEL = "gpt-4o-mini"
IMAGE_MODEL = "gpt-image-1"
IMAGE_RAW_BYTES = 1_536 * 1_024  # base64 makes this 2 MiB of b64_json


@dataclass(frozen=True, slots=True)
class Exchange:
    """One API call of the benchmark: the body sent, the answer nginx returns for it."""

    name: str
    path: str  # under the base URL, e.g. /v1/chat/completions
    request: Path
    answer: Path

    @property
    def answer_bytes(self) -> int:
        return self.answer.stat().st_size


def write_exchanges(out: Path) -> dict[str, Exchange]:
    fixtures = out / "fixtures"
    fixtures.mkdir(parents=True, exist_ok=True)
    chat = Exchange("chat", "/v1/chat/completions", fixtures / "chat-request.json", fixtures / "chat-answer.json")
    image = Exchange("image", "/v1/images/generations", fixtures / "image-request.json", fixtures / "image-answer.json")
    _write_json(chat.request, {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]})
    _write_json(chat.answer, _chat_completion())
    _write_json(
        image.request, {"model": IMAGE_MODEL, "prompt": "a lighthouse at dawn", "size": "1024x1024", "quality": "high"}
    )
    _write_json(image.answer, _image_response())
    return {exchange.name: exchange for exchange in (chat, image)}


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, separators=(",", ":")))
    path.chmod(0o644)  # nginx's worker drops to an unprivileged user when started as root


def _chat_completion() -> dict:
    return {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{CHAT_MODEL}-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 9,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }


def _image_response() -> dict:
    # Random bytes do not compress: the relay moves all 2 MiB, as it would a real PNG.
    b64_json = base64.b64encode(os.urandom(IMAGE_RAW_BYTES)).decode()
    return {
        "created": int(time.time()),
        "background": "opaque",
        "data": [{"b64_json": b64_json}],
        "output_format": "png",
        "quality": "high",
        "size": "1024x1024",
        # gpt-image-1's published token count for a high-quality 1024x1024 image
        "usage": {
            "input_tokens": 12,
            "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
            "output_tokens": 4160,
            "total_tokens": 4172,
        },
    }


def nginx_config(out: Path, port: int, exchanges: dict[str, Exchange]) -> Path:
    """One worker. A static file answers GET only; `error_page 405 =200 $uri` turns
    the POST's 405 into an internal GET of the same file, answered 200."""
    locations = "\n".join(
        f"""
        location = {exchange.path} {{
            alias {exchange.answer};
            default_type application/json;
            error_page 405 =200 $uri;
        }}"""
        for exchange in exchanges.values()
    )
    temp = out / "nginx"
    temp.mkdir(exist_ok=True)
    config = temp / "nginx.conf"
    config.write_text(
        f"""
worker_processes 1;
daemon off;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    # Clients and proxies keep their connections for the whole run.
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 404; }}
        {locations}
    }}
}}
"""
    )
    return config
