"""What an upstream reply says about itself: its request id and the wait it asks for."""

from __future__ import annotations

import email.utils
import time

import pytest

from providers.base import UpstreamReply


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer hint wins
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "x", "retry-after": "1"}, 1.0),
    ],
)
def test_retry_after(headers, expected):
    assert UpstreamReply(429, headers).retry_after_s() == expected


def test_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= UpstreamReply(429, {"retry-after": when}).retry_after_s() <= 30


def test_request_id_and_content_type():
    reply = UpstreamReply(200, {"x-request-id": "req_up", "content-type": "text/event-stream"})
    assert (reply.request_id, reply.content_type, reply.ok) == ("req_up", "text/event-stream", True)
    assert not UpstreamReply(404, {}).ok
