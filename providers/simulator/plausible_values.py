"""Plausible values for a field, guessed from its name and format: `age` is a number
from 18 to 80, `city` a city, `created_at` with format `date-time` a timestamp, and
free text borrows the words of the prompt."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

DEFAULT_RANGE: Final = (1.0, 100.0)


def topic_words(topic: str) -> list[str]:
    """The words free text is made of: the prompt's, or a few stock ones."""
    return [word.lower() for word in _WORD.findall(topic)] or list(_FILLER_WORDS)


def plausible_text(name: str, rng: random.Random, words: list[str]) -> str:
    """Free text for a field called `name`."""
    hints = _name_hints(name)
    # `city_name` is a city and `company_name` a company: a generic noun defers to its qualifier.
    ordered = [*hints[1:], hints[0]] if hints and hints[0] in _GENERIC_NOUNS else hints
    samples = next((_SAMPLES[hint] for hint in ordered if hint in _SAMPLES), None)
    if samples:
        return rng.choice(samples)
    if hints and hints[0] in ("id", "key", "code"):
        return f"{hints[1] if len(hints) > 1 else 'item'}_{rng.getrandbits(32):08x}"
    start = rng.randrange(len(words))
    phrase = " ".join((words * 2)[start : start + rng.randint(3, 6)])
    if set(hints) & _SENTENCE_HINTS:
        return phrase[:1].upper() + phrase[1:] + "."
    return phrase.title() if set(hints) & {"title", "headline", "label"} else phrase


def formatted_text(format_name: Any, rng: random.Random, words: list[str]) -> str | None:
    """A string in a JSON Schema `format` (`date-time`, `email`, `uuid` …), or None for one not known here."""
    made = _FORMATS.get(format_name) if isinstance(format_name, str) else None
    return made(rng, words) if made else None


def plausible_range(name: str) -> tuple[float, float]:
    """The range a number called `name` plausibly falls in."""
    return next((_RANGES[hint] for hint in _name_hints(name) if hint in _RANGES), DEFAULT_RANGE)


def _name_hints(name: str) -> list[str]:
    """`deliveryAddress` → ['address', 'delivery']: the words of a name, last (the noun) first."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word.lower() for word in re.split(r"[\s_\-]+", spaced) if word][::-1]


def _moment(rng: random.Random) -> datetime:
    return datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(365 * 24 * 60))


_WORD: Final = re.compile(r"[A-Za-z]{3,}")
_GENERIC_NOUNS: Final = frozenset({"name", "id", "key", "code", "type", "label"})
_FILLER_WORDS: Final = ("simulated", "structured", "answer", "from", "the", "tollgate", "simulator")
_SENTENCE_HINTS: Final = frozenset(
    {"description", "summary", "reason", "reasoning", "explanation", "answer", "content", "text", "message", "notes"}
    | {"comment", "details", "body", "response", "steps", "step", "thought", "analysis", "conclusion"}
)
_NAMES: Final = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra")
_CITIES: Final = ("Lisbon", "Kyoto", "Montreal", "Nairobi", "Oslo", "Valparaíso")
_SAMPLES: Final[Mapping[str, Sequence[str]]] = {
    "name": _NAMES,
    "author": _NAMES,
    "person": _NAMES,
    "username": ("ada", "grace.h", "aturing", "kjohnson"),
    "city": _CITIES,
    "location": _CITIES,
    "country": ("Portugal", "Japan", "Canada", "Kenya", "Norway", "Chile"),
    "address": ("12 Harbour Road", "7 Rua das Flores", "221 Station Street"),
    "street": ("Harbour Road", "Rua das Flores", "Station Street"),
    "company": ("Acme Corporation", "Globex", "Initech", "Umbrella Logistics"),
    "organization": ("Acme Corporation", "Globex", "Initech", "Umbrella Logistics"),
    "email": ("ada@example.com", "grace.hopper@example.org", "alan@example.net"),
    "phone": ("+1 555 0100", "+44 20 7946 0958", "+351 21 000 0000"),
    "url": ("https://example.com/docs", "https://example.org/articles/42"),
    "website": ("https://example.com", "https://example.org"),
    "color": ("teal", "amber", "crimson", "slate"),
    "colour": ("teal", "amber", "crimson", "slate"),
    "language": ("English", "Portuguese", "Japanese", "Swahili"),
    "currency": ("USD", "EUR", "JPY", "GBP"),
    "unit": ("celsius", "kilograms", "meters"),
    "status": ("active", "pending", "completed"),
    "sentiment": ("positive", "neutral", "negative"),
    "category": ("general", "billing", "technical"),
}
_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "age": (18, 80),
    "year": (1990, 2026),
    "month": (1, 12),
    "day": (1, 28),
    "hour": (0, 23),
    "minute": (0, 59),
    "price": (5, 500),
    "amount": (5, 500),
    "cost": (5, 500),
    "total": (10, 1000),
    "count": (1, 10),
    "quantity": (1, 10),
    "rating": (1, 5),
    "stars": (1, 5),
    "score": (0, 10),
    "confidence": (0, 1),
    "probability": (0, 1),
    "percent": (0, 100),
    "percentage": (0, 100),
    "latitude": (-90, 90),
    "lat": (-90, 90),
    "longitude": (-180, 180),
    "lon": (-180, 180),
    "temperature": (-10, 35),
}
_FORMATS: Final[Mapping[str, Callable[[random.Random, list[str]], str]]] = {
    "date-time": lambda rng, _: _moment(rng).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "date": lambda rng, _: _moment(rng).strftime("%Y-%m-%d"),
    "time": lambda rng, _: _moment(rng).strftime("%H:%M:%SZ"),
    "duration": lambda rng, _: f"P{rng.randint(1, 9)}DT{rng.randint(1, 23)}H",
    "email": lambda rng, words: f"{rng.choice(words)}@example.com",
    "hostname": lambda rng, words: f"{rng.choice(words)}.example.com",
    "ipv4": lambda rng, _: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng, _: f"2001:db8::{rng.randint(1, 0xFFFF):x}",
    "uuid": lambda rng, _: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "uri": lambda rng, words: f"https://example.com/{rng.choice(words)}",
}
