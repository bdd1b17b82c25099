"""The simulator's fault markers (`[sim fault=… id=…]`): parsed, checked, and found
wherever a request carries text (providers/simulator/markers.py)."""

from __future__ import annotations

import pytest

from providers.simulator.errors import SimError
from providers.simulator.markers import marker_texts, parse_marker, request_markers, strip_markers


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
