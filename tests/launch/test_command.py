"""`tollgate launch-check` refuses, with exit 2 and what to change, whatever would
make the check meaningless, before it starts a proxy or makes a request."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.cli import main

CONFIG = str(Path(__file__).resolve().parents[2] / "config.yaml")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--route", "gpt-image-3"], "--route: no route 'gpt-image-3' in the config; its routes: gpt-image-2, gpt-5.4"),
        (["--route", "gpt-5.4"], "--route: route 'gpt-5.4' does not make images"),
        (["--route", "gpt-image-2", "--report", "/no/such/folder/r.md"], "--report: folder /no/such/folder"),
        (
            ["--route", "gpt-image-2", "--url", "http://127.0.0.1:9", "--simulate-upstreams"],
            "--simulate-upstreams applies to the proxy the check starts itself",
        ),
        (
            ["--route", "gpt-image-2", "--url", "http://127.0.0.1:9"],
            "give the proxy's admin key with --admin-key or TOLLGATE_ADMIN_KEY",
        ),
        (
            ["--route", "gpt-image-2", "--url", "http://127.0.0.1:9", "--admin-key", "k"],
            "cannot reach Tollgate at http://127.0.0.1:9",
        ),
    ],
)
def test_what_cannot_run_exits_2_and_says_what_to_change(args, message, capsys, monkeypatch):
    monkeypatch.delenv("TOLLGATE_ADMIN_KEY", raising=False)
    assert main(["launch-check", "--config", CONFIG, *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_a_bad_config_exits_2_with_its_errors(tmp_path, capsys):
    bad = tmp_path / "config.yaml"
    bad.write_text(Path(CONFIG).read_text().replace("owner: platform-team", "ownr: platform-team", 1))
    assert main(["launch-check", "--config", str(bad), "--route", "gpt-image-2"]) == 2
    assert "routes.gpt-image-2.ownr: unknown key 'ownr'; did you mean 'owner'?" in capsys.readouterr().err
