"""The FOCUS export of real, mixed traffic — two price tables and the catalog, every
surface, a stream, a fallback whose failed try is billed, a refusal that is billed,
a stream cut short (costed at its estimate) and a request cut off by a `kill -9`
(abandoned) — written by `tollgate spend --format focus` and checked by the FinOps
Foundation's own validator (focus-validator, FOCUS 1.0 rules)."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from PIL import Image

from .configs import ConfigFile, Section, acme_on, acme_price_table, key, openai_on, route, target
from .harness import Proxy, ledger_rows, marker, run_command
from .prometheus import poll

TEAM_KEYS = {"growth": "sk-focus-growth", "research": "sk-focus-research"}


def config(simulator_url: str) -> ConfigFile:
    def on(provider: str, model: str) -> Section:
        return route(target(provider, model))

    return ConfigFile(
        price_tables={
            "acme-2026-11": acme_price_table(
                **{
                    "gpt-image-2": {
                        "image": {"low": {"1024x1024": Decimal("0.009")}, "medium": {"1024x1024": Decimal("0.06")}}
                    },
                    "gpt-5.4-mini": {"tokens": {"text_input": Decimal("0.80"), "text_output": Decimal("4.80")}},
                }
            )
        },
        providers={
            "openai": openai_on(
                simulator_url, api_key="sk-up-openai", billing_owner="openai/org-focus", failed_attempts="input_tokens"
            ),
            "acme": acme_on(
                simulator_url, api_key="sk-up-acme", billing_owner="acme/acct-focus", price_table="acme-2026-11"
            ),
        },
        routes={
            "gpt-image-2": route(
                target("openai", "gpt-image-2"),
                fallbacks=[target("acme", "gpt-image-2")],
                owner="platform-team",
                retries=0,
                review="required",
            ),
            "acme-image": on("acme", "gpt-image-2"),
            "gpt-5.4-mini": on("openai", "gpt-5.4-mini"),
            "mini-on-acme": on("acme", "gpt-5.4-mini"),
            "gpt-5.4": route(target("openai", "gpt-5.4"), owner="assistants-team"),
            "text-embedding-3-small": on("openai", "text-embedding-3-small"),
        },
        keys=[key("web-app", TEAM_KEYS["growth"], "growth"), key("notebook", TEAM_KEYS["research"], "research")],
    )


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1024, 1024), "navy").save(buffer, format="PNG")
    return buffer.getvalue()


def mixed_traffic(proxy: Proxy) -> list:
    growth, research = (proxy.client(api_key=key) for key in TEAM_KEYS.values())
    image = growth.images.generate

    def say(text: str) -> list[dict]:
        return [{"role": "user", "content": text}]

    return [
        lambda: image(model="gpt-image-2", prompt="a lighthouse", size="1024x1024", quality="low"),
        lambda: image(model="gpt-image-2", prompt="a harbour", size="1536x1024", quality="medium", n=2),
        lambda: research.images.generate(model="acme-image", prompt="a boat", size="1024x1024", quality="low"),
        lambda: research.images.generate(model="acme-image", prompt="a gull", size="1024x1024", quality="medium"),
        lambda: list(image(model="gpt-image-2", prompt="a kite", quality="low", stream=True, partial_images=1)),
        lambda: growth.images.edit(
            model="gpt-image-2", image=("in.png", png(), "image/png"), prompt="paint it red", quality="low"
        ),
        lambda: research.responses.create(model="gpt-5.4", input="hello"),
        lambda: growth.chat.completions.create(model="gpt-5.4-mini", messages=say("hi")),
        lambda: list(
            growth.chat.completions.create(
                model="gpt-5.4-mini", messages=say("go on"), stream=True, stream_options={"include_usage": True}
            )
        ),
        lambda: research.chat.completions.create(model="mini-on-acme", messages=say("hello acme")),
        lambda: growth.embeddings.create(model="text-embedding-3-small", input="words"),
        # openai fails and bills the try's input tokens; acme answers: two charges, two owners
        lambda: image(model="gpt-image-2", prompt=f"a fox {marker('unavailable', upstream='openai')}", quality="low"),
        # refused for moderation: openai bills the input tokens
        lambda: image(model="gpt-image-2", prompt=f"nope {marker('moderation')}", quality="low"),
        # a stream cut short: no usage, costed at its estimate
        lambda: list(image(model="gpt-image-2", prompt=f"cut {marker('cut_stream')}", quality="low", stream=True)),
    ]


def send(request) -> None:
    with contextlib.suppress(openai.APIError):  # refusals and cut streams are part of the traffic
        request()


def tollgate_spend(proxy: Proxy, *flags: str) -> str:
    result = run_command(proxy, "spend", *flags)
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate(path: Path) -> str:
    """The validator's report. It exits 0 whatever it finds, and reads its list of currency codes
    from a path relative to the working directory: it runs from the folder that holds its package."""
    package = importlib.util.find_spec("focus_validator")
    assert package is not None and package.origin, "focus-validator is installed by `pip install -e '.[dev]'`"
    result = subprocess.run(
        [sys.executable, "-m", "focus_validator.main", "--data-file", str(path), "--validate-version", "1.0"],
        cwd=Path(package.origin).parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def exported(simulator, start_proxy, tmp_path_factory) -> dict[str, str]:
    proxy = start_proxy(config(simulator.url))
    traffic = mixed_traffic(proxy)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, traffic))
    poll(lambda: ledger_rows(proxy, "status <> 'started'") == len(traffic), what="every request's row in the ledger")

    # a request in flight when the proxy is killed: the restarted proxy replays it as abandoned
    slow = proxy.client(api_key=TEAM_KEYS["growth"]).images.generate
    with ThreadPoolExecutor(1) as pool:
        cut_off = pool.submit(send, lambda: slow(model="gpt-image-2", prompt=f"slow {marker(delay=5)}", quality="low"))
        poll(lambda: ledger_rows(proxy, "status = 'started'") == 1, what="the slow request's row journaled and written")
        proxy.process.send_signal(signal.SIGKILL)
        cut_off.result()
    proxy.process.wait(10)
    restarted = start_proxy(config(simulator.url), folder=proxy.config_path.parent)
    poll(lambda: ledger_rows(restarted, "status = 'abandoned'") == 1, what="the cut-off request abandoned")
    return {
        "per_charge": tollgate_spend(restarted, "--format", "focus"),
        "daily": tollgate_spend(restarted, "--format", "focus", "--aggregate", "daily"),
        "ledger_total": tollgate_spend(restarted, "--format", "json"),
    }


def lines(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_export_covers_every_kind_of_charge(exported):
    found = lines(exported["per_charge"])
    assert {line["ProviderName"] for line in found} == {"openai", "acme"}
    assert {line["x_PriceSource"] for line in found} == {"official", "provider", "catalog"}
    assert {line["PricingUnit"] for line in found} == {"Images", "Tokens", "Requests"}
    assert {line["x_Status"] for line in found} >= {"ok", "error", "abandoned"}
    assert {line["x_CostBasis"] for line in found} == {"usage", "estimate"}
    assert {line["x_Surface"] for line in found} == {
        "images.generate",
        "images.edit",
        "responses",
        "chat.completions",
        "embeddings",
    }
    # acme's images cost more than OpenAI's list price for the same tokens
    acme_images = [line for line in found if line["x_PriceTable"] == "acme-2026-11" and line["PricingUnit"] == "Images"]
    assert acme_images and all(Decimal(line["BilledCost"]) > Decimal(line["ListCost"]) for line in acme_images)
    assert all(line["x_ListPriceTable"] == "openai-official" for line in acme_images)


@pytest.mark.parametrize("form", ["per_charge", "daily"])
def test_the_export_adds_up_to_the_ledger_to_the_nano_dollar(exported, form):
    import orjson

    total = Decimal(orjson.loads(exported["ledger_total"])["total_usd"])
    assert total > 0 and sum(Decimal(line["BilledCost"]) for line in lines(exported[form])) == total


@pytest.mark.timeout(300)
@pytest.mark.parametrize("form", ["per_charge", "daily"])
def test_the_finops_foundations_validator_passes_the_export(exported, form, tmp_path):
    path = tmp_path / f"{form}.csv"
    path.write_text(exported[form])
    report = validate(path)
    assert "Validation succeeded." in report and "failed" not in report, report


@pytest.mark.timeout(300)
def test_the_validators_report_is_read_so_a_broken_export_fails(exported, tmp_path):
    """Without ListCost, and with a BilledCost left empty, the validator says so: this test would
    see a regression in the export, not only a validator that could not run."""
    broken = lines(exported["per_charge"])
    broken[0]["BilledCost"] = ""
    out = io.StringIO()
    writer = csv.DictWriter(out, [name for name in broken[0] if name != "ListCost"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: value for name, value in line.items() if name != "ListCost"} for line in broken)
    path = tmp_path / "broken.csv"
    path.write_text(out.getvalue())
    report = validate(path)
    assert "Validation failed!" in report
    assert "ListCost_Required failed" in report and "BilledCost_NotNull failed" in report
