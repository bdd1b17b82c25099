"""`value`, the dataclass of the values a request makes: compared and hashed by its
fields like a frozen dataclass, without the frozen `__init__`'s cost."""

from __future__ import annotations

import pytest

from providers.types import Call, JsonBody
from providers.values import value


@value
class Pair:
    left: str
    right: int = 0


def test_a_value_is_equal_to_and_hashes_like_another_with_the_same_fields():
    assert Pair("a", 1) == Pair("a", 1)
    assert Pair("a", 1) != Pair("a", 2)
    assert hash(Pair("a", 1)) == hash(Pair("a", 1))
    assert {Pair("a", 1), Pair("a", 1), Pair("b")} == {Pair("a", 1), Pair("b", 0)}


def test_a_value_is_slotted():
    pair = Pair("a")
    assert not hasattr(pair, "__dict__")
    with pytest.raises(AttributeError):
        pair.other = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [Pair, Call, JsonBody])
def test_a_value_stores_its_fields_plainly(kind):
    """A frozen dataclass defines `__setattr__` (to refuse) and sets each field in its
    `__init__` through `object.__setattr__`: the cost `value` exists to avoid."""
    assert "__setattr__" not in vars(kind)
    assert "__setattr__" not in kind.__init__.__code__.co_names
