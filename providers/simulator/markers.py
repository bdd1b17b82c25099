"""The fault-marker grammar: `[sim key=value …]` in request text, or the same
`key=value …` list in an `x-sim` header.

Markers are how tests steer the simulator through the proxy: the proxy forwards
prompts and headers untouched, so a marker written by a test reaches the upstream.
A typo must fail loudly, so unknown keys and values are a 400 naming them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from .errors import SimError

FAULTS: Final = (
    "timeout",
    "rate_limit",
    "server_error",
    "unavailable",
    "moderation",
    "invalid_size",
    "cut_stream",
    "malformed",
)
KEYS: Final = ("fault", "times", "upstream", "retry_after", "delay", "interval", "id")
HEADER: Final = "x-sim"

TIMEOUT_DEFAULT_DELAY: Final = 60.0

_MARKER: Final = re.compile(r"\[sim(?=[\s\]])([^\]]*)\]")
_MARKER_START: Final = re.compile(r"\[sim(?=[\s\]]|$)")
# Where a marker may sit: the image prompt, chat message content (string or text
# parts), the Responses input and instructions, the embeddings input.
_TEXT_KEYS: Final = frozenset({"prompt", "content", "text", "input", "instructions"})


@dataclass(frozen=True, slots=True)
class Marker:
    """One parsed marker. `text` is its canonical form, the identity `times` counts under;
    `source` is how the request wrote it (`[sim …]`, or `header x-sim: …`)."""

    text: str
    source: str
    fault: str | None = None
    times: int | None = None
    upstream: str | None = None
    retry_after: float = 1.0
    delay: float | None = None
    interval: float = 0.0

    @property
    def wait(self) -> float:
        """Seconds to hold the request before answering."""
        if self.delay is not None:
            return self.delay
        return TIMEOUT_DEFAULT_DELAY if self.fault == "timeout" else 0.0


def request_markers(header: str | None, body: Any) -> list[Marker]:
    """All distinct markers of a request, header first, in order of appearance."""
    markers: dict[str, Marker] = {}
    if header is not None and header.strip():
        marker = parse_marker(header, source=f"header {HEADER}: {header}")
        markers[marker.text] = marker
    for text in marker_texts(body):
        matches = list(_MARKER.finditer(text))
        if len(matches) != len(_MARKER_START.findall(text)):
            start = text.find("[sim", matches[-1].end() if matches else 0)
            raise _bad_marker(f"Unterminated simulator marker '{text[start : start + 60]}' (missing ']').", "text")
        for match in matches:
            marker = parse_marker(match[1], source=match[0])
            markers.setdefault(marker.text, marker)
    return list(markers.values())


def marker_texts(value: Any, key: str | None = None) -> Iterator[str]:
    """Strings of a JSON body (or form fields) that may carry a marker."""
    if isinstance(value, str):
        if key in _TEXT_KEYS and "[sim" in value:
            yield value
    elif isinstance(value, dict):
        for child_key, child in value.items():
            yield from marker_texts(child, child_key)
    elif isinstance(value, list):
        for child in value:
            yield from marker_texts(child, key)


def strip_markers(text: str) -> str:
    """`text` without its markers, for echoing a prompt back."""
    return " ".join(_MARKER.sub(" ", text).split())


def parse_marker(spec: str, *, source: str) -> Marker:
    tokens = spec.split()
    values: dict[str, str] = {}
    for token in tokens:
        key, equals, value = token.partition("=")
        if not equals or not key:
            raise _bad_marker(f"Malformed simulator marker {source}: '{token}' is not key=value.", source)
        if key not in KEYS:
            known = ", ".join(sorted(KEYS))
            raise _bad_marker(f"Unknown simulator marker key '{key}' in {source}. Known keys: {known}.", source)
        if key in values:
            raise _bad_marker(f"Duplicate simulator marker key '{key}' in {source}.", source)
        values[key] = value
    fault = values.get("fault")
    if fault is not None and fault not in FAULTS:
        raise _bad_marker(
            f"Unknown simulator fault '{fault}' (key 'fault') in {source}. Known faults: {', '.join(FAULTS)}.",
            source,
        )
    times = values.get("times")
    return Marker(
        text=" ".join(tokens),
        source=source,
        fault=fault,
        times=None if times is None else _count(times, "times", source),
        upstream=values.get("upstream"),
        retry_after=_seconds(values.get("retry_after", "1"), "retry_after", source),
        delay=None if "delay" not in values else _seconds(values["delay"], "delay", source),
        interval=_seconds(values.get("interval", "0"), "interval", source),
    )


def _count(value: str, key: str, source: str) -> int:
    if not value.isdigit():
        raise _bad_marker(
            f"Invalid value for simulator marker key '{key}' in {source}: '{value}' is not a whole number.", source
        )
    return int(value)


def _seconds(value: str, key: str, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise _bad_marker(
            f"Invalid value for simulator marker key '{key}' in {source}: '{value}' is not a number of seconds.",
            source,
        )
    return seconds


def _bad_marker(message: str, source: str) -> SimError:
    param = HEADER if source.startswith("header") else None
    return SimError(400, message, param=param, code="invalid_simulator_marker")
