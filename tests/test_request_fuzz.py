"""Property-based: whatever JSON or multipart a client sends to an endpoint, the
answer is never a 5xx, every error is in OpenAI's shape, and every request has its
ledger row with the status the client saw.

Hypothesis builds the bodies: each endpoint's own fields (those Tollgate reads and
some it passes through) with plausible values or values of any JSON type, plus junk
that is no JSON object at all. The app runs in process, its provider is the real
simulator on loopback, with no retries or fallbacks, so nothing here makes a 5xx
legitimate (an upstream's own 5xx would be relayed as one)."""

from __future__ import annotations

import base64
import io
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.testclient import TestClient

from proxy.config import parse_config
from proxy.runtime.server import build_app
from proxy.serving.gateway import GatewayFactory
from proxy.state import MemoryCounters

EXAMPLES = 250  # per endpoint: the whole module stays well under a minute on two cores

CONFIG = """
ledger:
  url: sqlite:///${LEDGER_DIR}/ledger.db
  journal_dir: ${LEDGER_DIR}/journal
  drain_timeout_s: 5
server:
  log: {level: error}
providers:
  openai: {kind: simulator, billing_owner: openai/org-fuzz, price_table: openai-official}
routes:
  gpt-image-2:
    targets: [{provider: openai, model: gpt-image-2}]
    retries: 0
    timeout_s: 20
  gpt-5.4:
    targets: [{provider: openai, model: gpt-5.4}]
    retries: 0
    timeout_s: 20
  gpt-5.4-mini:
    targets: [{provider: openai, model: gpt-5.4-mini}]
    retries: 0
    timeout_s: 20
  text-embedding-3-small:
    targets: [{provider: openai, model: text-embedding-3-small}]
    retries: 0
    timeout_s: 20
"""


class Proxy:
    """The app under test, and every answer it gave: request id → HTTP status."""

    def __init__(self, client: TestClient, ledger: Path) -> None:
        self.client = client
        self.ledger = ledger
        self.answered: dict[str, int] = {}

    def post(self, path: str, **request: Any) -> None:
        response = self.client.post(path, **request)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            error = orjson.loads(response.content)["error"]
            assert isinstance(error["message"], str) and error["message"]
            assert isinstance(error["type"], str)
            assert error["param"] is None or isinstance(error["param"], str)
            assert error["code"] is None or isinstance(error["code"], str)
        self.answered[response.headers["x-request-id"]] = response.status_code

    def assert_every_request_has_its_row(self, timeout_s: float = 30) -> None:
        """The ledger's writer batches: wait for it, then compare what the client was told."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self._rows()
            if self.answered.keys() <= rows.keys() or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {request_id: rows.get(request_id) for request_id in self.answered} == self.answered

    def _rows(self) -> dict[str, int]:
        try:
            with closing(sqlite3.connect(self.ledger)) as database:
                query = "SELECT request_id, http_status FROM ledger WHERE http_status IS NOT NULL"
                return dict(database.execute(query).fetchall())
        except sqlite3.OperationalError:  # the writer has not made the table yet
            return {}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    loaded = parse_config(CONFIG, {"LEDGER_DIR": str(folder)})
    app = build_app(loaded, GatewayFactory(simulate_all=False, counters=MemoryCounters()))
    with TestClient(app) as client:
        yield client, folder / "ledger.db"


@pytest.fixture
def proxy(app_client) -> Proxy:
    client, ledger = app_client
    return Proxy(client, ledger)


fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow],
)


def _picture(fmt: str, size: tuple[int, int], mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (40, 90, 200, 0)[: len(mode)]).save(buffer, fmt)
    return buffer.getvalue()


PNG = _picture("PNG", (64, 64))  # transparent: as a mask, the whole picture may change
JPEG = _picture("JPEG", (64, 64), "RGB")

# --- JSON values of every type, and each endpoint's fields --------------------------------------

text = st.text(max_size=30)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | int64 | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
counts = (
    st.integers(min_value=1, max_value=3)
    | st.integers(min_value=-2, max_value=12)
    | st.sampled_from([2**31 - 1, 2**31, 2**62])
)
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": text})
urls = (
    st.sampled_from([f"data:image/png;base64,{base64.b64encode(PNG).decode()}", "https://example.invalid/a.png"]) | text
)
image_settings = {
    "size": st.sampled_from(["1024x1024", "1536x1024", "auto", "auto", "1000x1000", "999999x999999", "huge"]),
    "quality": st.sampled_from(["low", "medium", "high", "auto", "ultra"]),
    "n": counts,
    "output_format": st.sampled_from(["png", "jpeg", "webp", "webp", "gif"]),
    "output_compression": st.integers(min_value=0, max_value=100) | counts,
    "background": st.sampled_from(["auto", "opaque", "opaque", "transparent"]),
    "partial_images": st.integers(min_value=0, max_value=3) | counts,
}
passed_through = {"user": text, "temperature": st.floats(0, 2), "seed": int64}
every_surface = {
    "stream": st.booleans(),
    "metadata": st.fixed_dictionaries({"prompt_version": text}) | st.dictionaries(text, json_values, max_size=2),
}


def bodies(
    model: str, required: dict[str, st.SearchStrategy], optional: dict[str, st.SearchStrategy]
) -> st.SearchStrategy:
    """Objects with `model`, the `required` fields and some `optional` ones: all plausible,
    or one of them of any type, or any of them of any type; and JSON that is no object."""
    optional = {**every_surface, **passed_through, **optional}
    plausible = st.fixed_dictionaries({"model": st.just(model), **required}, optional=optional)
    names = st.sampled_from(["model", *sorted(required), *sorted(optional)])
    one_wrong = st.builds(lambda body, name, value: {**body, name: value}, plausible, names, json_values)
    anything = st.fixed_dictionaries(
        {"model": st.just(model) | json_values},
        optional={name: value | json_values for name, value in {**required, **optional}.items()},
    )
    with_extras = st.builds(lambda body, extra: {**extra, **body}, plausible, st.dictionaries(text, json_values))
    return st.one_of(plausible, plausible, one_wrong, anything, with_extras, json_values)


CHAT = bodies(
    "gpt-5.4-mini",
    {"messages": st.lists(message, min_size=1, max_size=3)},
    {
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "max_tokens": counts,
        "max_completion_tokens": counts,
    },
)
RESPONSES = bodies(
    "gpt-5.4",
    {"input": text | st.lists(message, min_size=1, max_size=2)},
    {
        "instructions": text,
        "max_output_tokens": counts,
        "tools": st.lists(
            st.fixed_dictionaries({"type": st.just("image_generation")}, optional=image_settings)
            | st.fixed_dictionaries({"type": st.just("web_search")}),
            max_size=2,
        ),
    },
)
EMBEDDINGS = bodies("text-embedding-3-small", {"input": text | st.lists(text, min_size=1, max_size=3)}, {})
GENERATIONS = bodies("gpt-image-2", {"prompt": text}, image_settings)
JSON_EDITS = bodies(
    "gpt-image-2",
    {"prompt": text, "images": st.lists(st.fixed_dictionaries({"image_url": urls}), min_size=1, max_size=2)},
    image_settings,
)


def fuzz_json(proxy: Proxy, path: str, strategy: st.SearchStrategy, *examples: Any) -> None:
    """Sends what `strategy` draws (and `examples`) to `path`, then checks the ledger."""

    @fuzz
    @given(body=strategy)
    def send(body: Any) -> None:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        proxy.post(path, content=content, headers={"content-type": "application/json"})

    for body in examples:
        send = example(body=body)(send)
    send()
    proxy.assert_every_request_has_its_row()


def test_chat_completions(proxy):
    # A streamed chat whose stream_options is not an object answered 500.
    streamed = {"model": "gpt-5.4-mini", "messages": [], "stream": True}
    fuzz_json(
        proxy,
        "/v1/chat/completions",
        CHAT | st.binary(max_size=40),
        {**streamed, "stream_options": "usage"},
        {**streamed, "stream_options": ["include_usage"]},
    )


def test_responses(proxy):
    fuzz_json(proxy, "/v1/responses", RESPONSES)


def test_embeddings(proxy):
    fuzz_json(proxy, "/v1/embeddings", EMBEDDINGS)


def test_image_generations(proxy):
    fuzz_json(proxy, "/v1/images/generations", GENERATIONS)


def test_image_edits_as_json(proxy):
    fuzz_json(proxy, "/v1/images/edits", JSON_EDITS)


# --- multipart forms ------------------------------------------------------------------------------


odd_files = st.sampled_from(
    [PNG[:40], PNG[:-12], _picture("PNG", (32, 32)), _picture("PNG", (64, 64), "RGB"), b"", b"not an image"]
) | st.binary(max_size=64)
whole_inputs = st.lists(
    st.tuples(st.sampled_from(["image", "image[]"]), st.sampled_from([PNG, JPEG])), min_size=1, max_size=3
)
form_files = st.one_of(
    whole_inputs,
    st.builds(lambda inputs: [*inputs, ("mask", PNG)], whole_inputs),
    st.lists(st.tuples(st.sampled_from(["image", "image[]", "mask"]) | text, odd_files | st.just(PNG)), max_size=3),
)
form_settings = {
    "stream": st.sampled_from(["true", "false"]),
    "size": st.sampled_from(["1024x1024", "auto", "auto"]),
    "quality": st.sampled_from(["low", "high"]),
    "output_format": st.sampled_from(["png", "webp"]),
    "n": st.sampled_from(["1", "2"]),
    "partial_images": st.sampled_from(["0", "1"]),
}
odd_settings = {
    "stream": st.sampled_from(["yes", "", "TRUE"]),
    "size": st.sampled_from(["1000x1000", "x", "99999x99999"]),
    "output_compression": st.sampled_from(["80", "101", "-5", "high", "1e3"]),
    "n": st.sampled_from(["-1", "0", "11", "two", "٣", "2147483648"]),
    "partial_images": st.sampled_from(["-1", "4", "1.5"]),
}
plausible_form = st.fixed_dictionaries({"model": st.just("gpt-image-2"), "prompt": text}, optional=form_settings)
form_fields = st.one_of(
    plausible_form,
    plausible_form,
    st.builds(lambda form, odd: {**form, **odd}, plausible_form, st.fixed_dictionaries({}, optional=odd_settings)),
    st.fixed_dictionaries({"model": st.just("gpt-image-2") | text}, optional={"prompt": text, **odd_settings}),
    st.dictionaries(text, text, max_size=4),
)


def test_image_edits_as_multipart_forms(proxy):
    @fuzz
    @given(fields=form_fields, uploads=form_files)
    def send(fields: dict[str, str], uploads: list[tuple[str, bytes]]) -> None:
        parts = [(name, ("upload.png", content, "image/png")) for name, content in uploads]
        proxy.post("/v1/images/edits", data=fields, files=parts or [("image", ("a.png", PNG, "image/png"))])

    send()
    proxy.assert_every_request_has_its_row()


def test_image_edits_as_broken_multipart(proxy):
    @fuzz
    @given(raw=st.binary(max_size=200), boundary=st.sampled_from(["fuzz", "", "x" * 80]))
    def send(raw: bytes, boundary: str) -> None:
        content_type = f"multipart/form-data; boundary={boundary}" if boundary else "multipart/form-data"
        proxy.post("/v1/images/edits", content=b"--fuzz\r\n" + raw, headers={"content-type": content_type})

    send()
    proxy.assert_every_request_has_its_row()
