"""Strings made to match a schema's `pattern`, checked with `re.search` as JSON Schema reads it."""

from __future__ import annotations

import random
import re

import pytest

from providers.simulator.regex_instance import PatternError, regex_instance

PATTERNS = [
    r"^\d{3}-\d{4}$",
    r"^[A-Z]{2}\d{2}[A-Z0-9]{4,10}$",
    r"^(foo|bar)+baz$",
    r"^[^aeiou\s]{5}$",
    r"^\+\d{1,3} \d{6,10}$",
    r"(\w+)@\1\.com",
    r"^(?=.*\d)[a-z\d]{8}$",
    r"^(?:[01]\d|2[0-3]):[0-5]\d$",
    r"colou?r",
    r"^.{3}$",
    r"^\S+?$",
    r"^(?>ab|a)c$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_made_strings_match_their_pattern(pattern: str) -> None:
    for seed in range(10):
        assert re.search(pattern, regex_instance(pattern, random.Random(seed)))


def test_the_same_generator_state_gives_the_same_string() -> None:
    assert regex_instance(r"^[a-z]{4,9}$", random.Random(1)) == regex_instance(r"^[a-z]{4,9}$", random.Random(1))


def test_lengths_are_kept_where_the_pattern_allows() -> None:
    for seed in range(10):
        made = regex_instance(r"^[a-z]{2,12}$", random.Random(seed), shortest=2, longest=3)
        assert 2 <= len(made) <= 3


@pytest.mark.parametrize(("pattern", "problem"), [("([", "not a valid regular expression"), (r"^(?!a)a$", "no string")])
def test_impossible_patterns_are_errors(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError, match=problem):
        regex_instance(pattern, random.Random(0))
