"""The pieces that carry a reload beyond one process: the board several workers
share, and the watch on the config file. Real files, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from proxy.config import config_version
from proxy.config.watch import ConfigWatch
from proxy.reload.board import ReloadBoard


def test_each_post_gets_the_next_generation_and_followers_see_it_once():
    board = ReloadBoard.create()
    assert board.post("a: 1\n", "v1") == 1
    follower = ReloadBoard(board.folder)
    posted = follower.newer_than(0)
    assert (posted.generation, posted.version, posted.text) == (1, "v1", "a: 1\n")
    assert follower.newer_than(1) is None
    assert board.post("a: 2\n", "v2") == 2
    assert follower.newer_than(1).text == "a: 2\n"
    assert follower.newer_than(1) is None  # nothing posted since


def test_posts_from_several_processes_each_get_their_own_generation():
    board = ReloadBoard.create()
    board.post("a: 0\n", "v0")
    script = (
        "import sys; from proxy.reload.board import ReloadBoard\n"
        "board = ReloadBoard(sys.argv[1])\n"
        "for _ in range(25): board.post('x', 'v')\n"
    )
    posters = [subprocess.Popen([sys.executable, "-c", script, str(board.folder)]) for _ in range(3)]
    assert [poster.wait(60) for poster in posters] == [0, 0, 0]
    assert board.read().generation == 1 + 3 * 25


async def test_a_reload_is_confirmed_when_every_live_worker_reports_its_generation():
    board = ReloadBoard.create()
    board.report(3, "v3")  # this process, as a worker
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (board.folder / f"worker-{dead.pid}.json").write_text('{"generation": 1, "version": "v1"}')

    reports = await board.confirm(3, timeout_s=5)

    assert reports == {os.getpid(): (3, "v3")}  # the dead worker's stale report is dropped
    assert not (board.folder / f"worker-{dead.pid}.json").exists()
    lagging = await board.confirm(4, timeout_s=0.2)
    assert lagging == {os.getpid(): (3, "v3")}
    board.withdraw()
    assert board.reports() == {}


def test_the_watch_fires_when_the_text_changes_and_not_when_it_is_only_touched(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    changed = threading.Event()
    calls = []
    watch = ConfigWatch(path, config_version("a: 1\n"), lambda: (calls.append(1), changed.set()), interval_s=0.02)
    watch.start()
    try:
        os.utime(path, ns=(1, 1))  # touched, same text
        path.with_name("next.yaml").write_text("a: 2\n")
        os.replace(path.with_name("next.yaml"), path)  # replaced the way editors save
        assert changed.wait(10)
        changed.clear()
        assert not changed.wait(0.3)  # nothing more happened, nothing more is reported
    finally:
        watch.stop()
    assert calls == [1]
