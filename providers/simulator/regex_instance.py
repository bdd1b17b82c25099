"""A string matching a regular expression: what a model writes for a schema's `pattern`.

It walks the pattern as Python's own `re` parser reads it (a private module, but the
one place the grammar is defined; tests pin the behaviour), choosing literals, class
members, branches and repeat counts with the request's generator. Lookarounds are
skipped, and the result is checked, so a string that misses is never returned.
"""

from __future__ import annotations

import random
import re
from re import _constants as ops
from re import _parser
from typing import Any, Final

_POOL: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-."
_MORE: Final = 3  # repeats beyond the minimum, at most
_TRIES: Final = 8


class PatternError(ValueError):
    """No string matching the pattern could be made (or the pattern is not a regex)."""


def regex_instance(pattern: str, rng: random.Random, *, shortest: int = 0, longest: int | None = None) -> str:
    """A string `re.search(pattern, …)` finds, as JSON Schema's `pattern` asks, within the lengths if it can."""
    try:
        parsed = _parser.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as error:
        raise PatternError(f"pattern '{pattern}' is not a valid regular expression: {error}") from None
    found = None
    for _ in range(_TRIES):
        text = _emit(list(parsed), rng, {})
        if compiled.search(text):
            found = text
            if shortest <= len(text) <= (longest if longest is not None else len(text)):
                return text
    if found is None:
        raise PatternError(f"no string matching pattern '{pattern}' could be made")
    return found


def _emit(items: list[tuple[Any, Any]], rng: random.Random, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, value in items:
        if op is ops.LITERAL:
            out.append(chr(value))
        elif op is ops.NOT_LITERAL:
            out.append(next(char for char in _POOL if ord(char) != value))
        elif op is ops.ANY:
            out.append(rng.choice(_POOL[:62]))
        elif op is ops.IN:
            out.append(_member(value, rng))
        elif op is ops.BRANCH:
            out.append(_emit(list(rng.choice(value[1])), rng, groups))
        elif op is ops.SUBPATTERN:
            group, _, _, inner = value
            text = _emit(list(inner), rng, groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif op in (ops.MAX_REPEAT, ops.MIN_REPEAT, ops.POSSESSIVE_REPEAT):
            fewest, most, inner = value
            count = rng.randint(fewest, min(most, fewest + _MORE))
            out += [_emit(list(inner), rng, groups) for _ in range(count)]
        elif op is ops.ATOMIC_GROUP:
            out.append(_emit(list(value), rng, groups))
        elif op is ops.GROUPREF:
            out.append(groups.get(value, ""))
        elif op is ops.CATEGORY:
            out.append(_member([(op, value)], rng))
        # AT (anchors) and ASSERT/ASSERT_NOT (lookarounds) produce nothing.
    return "".join(out)


def _member(members: list[tuple[Any, Any]], rng: random.Random) -> str:
    """A character of a class such as `[A-Z]`, `[^a-c]` or `\\d`."""
    if members and members[0][0] is ops.NEGATE:
        allowed = [char for char in _POOL if not any(_contains(member, char) for member in members[1:])]
        if not allowed:
            raise PatternError("a negated character class excludes every character the simulator writes")
        return rng.choice(allowed)
    op, value = rng.choice(members)
    if op is ops.LITERAL:
        return chr(value)
    if op is ops.RANGE:
        return chr(rng.randint(*value))
    candidates = [char for char in _POOL if _contains((op, value), char)]
    return rng.choice(candidates) if candidates else _POOL[0]


def _contains(member: tuple[Any, Any], char: str) -> bool:
    op, value = member
    if op is ops.LITERAL:
        return ord(char) == value
    if op is ops.RANGE:
        return value[0] <= ord(char) <= value[1]
    if op is ops.CATEGORY:
        kind = str(value).removeprefix("CATEGORY_")
        negated = kind.startswith("NOT_")
        test = {"DIGIT": str.isdigit, "SPACE": str.isspace, "WORD": lambda c: c.isalnum() or c == "_"}
        matched = test.get(kind.removeprefix("NOT_"), lambda _: False)(char)
        return matched != negated
    return False
