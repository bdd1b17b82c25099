"""Before serving, the garbage collector stops scanning what start-up made and runs
its young collections less often: a request's objects go by reference counting."""

from __future__ import annotations

import gc

from proxy.runtime.server import collect_less


def test_start_ups_objects_are_frozen_and_young_collections_are_rarer():
    threshold = gc.get_threshold()
    try:
        collect_less()
        assert gc.get_freeze_count() > 10_000  # the modules, classes and functions imported so far
        assert gc.get_threshold()[0] == 20_000 and gc.get_threshold()[1:] == threshold[1:]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
