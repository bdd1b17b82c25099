"""`value`: the dataclass of the values a request makes as it goes (its `Call`, route
plan, estimate, cost lines, attempts): slotted, compared and hashed by their fields,
and never changed once made.

Frozen to the type checker, not at run time: a frozen dataclass's `__init__` sets
each field through `object.__setattr__`, about ten times the cost of a plain store,
and a chat request makes some thirty of these values, ~120 fields: a tenth of its
instructions at chat c=64 (bench/README.md). Nothing assigns to them after they are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def value(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
