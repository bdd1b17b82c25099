"""Before serving, the garbage collector stops scanning what start-up made and runs
its young collections less often: a request's objects go by reference counting.
`tollgate serve` starts up with the collector off, and turns it on again on every
way out of its start-up."""

from __future__ import annotations

import gc

from proxy.cli import EXIT_CONFIG_ERROR, main
from proxy.runtime.server import collect_less


def test_start_ups_objects_are_frozen_and_young_collections_are_rarer():
    threshold = gc.get_threshold()
    gc.disable()
    try:
        collect_less()
        assert gc.get_freeze_count() > 10_000  # the modules, classes and functions imported so far
        assert gc.get_threshold()[0] == 20_000 and gc.get_threshold()[1:] == threshold[1:]
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.enable()


def test_a_start_up_that_fails_leaves_the_collector_on(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("providers: {}\nroutes: {nonsense\n")
    assert main(["serve", "--config", str(config)]) == EXIT_CONFIG_ERROR
    assert gc.isenabled()
