"""The typed shape of `config.yaml`: every section, validated
once at load; unknown keys are errors, so a typo never passes silently.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from providers.registry import Name, OutputFormat, ProviderSettings

PriceSource = Literal["official", "provider", "catalog"]
Quality = Literal["low", "medium", "high", "auto", "xhigh", "max", "standard", "hd"]
TokenKind = Literal[
    "text_input", "cached_text_input", "text_output", "image_input", "cached_image_input", "image_output"
]

Usd = Annotated[Decimal, Field(ge=0)]
SIZE_PATTERN = re.compile(r"^(auto|\d+x\d+)$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- server, ledger, state, files ------------------------------------------------------


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    access_log: bool = True


_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


class CorsSettings(Section):
    """Browsers calling the proxy directly (the SDK with `dangerouslyAllowBrowser`)."""

    allow_origins: tuple[str, ...] = Field(min_length=1, description="exact origins, or '*' for any")
    allow_headers: tuple[str, ...] = Field(default=("*",), description="request headers a browser may send")

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"'{origin}' is not an origin: write scheme://host[:port] with no path or trailing slash, "
                    "as a browser sends it (https://app.example.com), or '*' for any"
                )
        return origins


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    admin_key: SecretStr | None = None
    max_body_mb: int = Field(default=64, ge=1, description="larger request bodies get 413")
    drain_timeout_s: float = Field(default=30, gt=0, description="how long SIGTERM waits for requests in flight")
    client_header_timeout_s: float = Field(
        default=30, gt=0, description="a request's headers must arrive within this, or 408 and the connection closes"
    )
    client_body_timeout_s: float = Field(
        default=60, gt=0, description="a request's body must arrive within this, or 408 and the connection closes"
    )
    max_connections: int | None = Field(
        default=None, ge=1, description="per process; a connection beyond it gets 503 (unset: no limit)"
    )
    watch_config: bool = False
    log: LogSettings = LogSettings()
    metrics: bool = Field(default=True, description="GET /metrics; off only to measure what metrics cost")
    cors: CorsSettings | None = Field(default=None, description="off when absent: browsers get no CORS headers")


class LedgerSettings(Section):
    url: str = "sqlite:///tollgate.db"
    journal_dir: str = Field(default="tollgate-journal", description="rows are journaled here before the database")
    drain_timeout_s: float = Field(default=30, gt=0, description="how long shutdown waits for the database")
    read_wait_s: float = Field(
        default=5, gt=0, description="how long a read waits for the writers to record what was answered, else 503"
    )
    # Off only to measure the ledger's own cost (bench/): nothing is recorded, and start-up says so.
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("use sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return url


class StateSettings(Section):
    # Declared before `url` and `prefix`, whose checks depend on it.
    cluster: bool = Field(default=False, description="`url` names one node of a Redis Cluster")
    url: str = "memory://"
    prefix: str = Field(default="tollgate", min_length=1, description="namespace of the keys in Redis")
    conversation_ttl_days: float = Field(
        default=30, gt=0, description="how long a Responses id stays bound to the provider that made it"
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str, info: ValidationInfo) -> str:
        if not url.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("use memory:// (one replica) or redis://HOST:PORT/DB (several)")
        if info.data.get("cluster"):
            if not url.startswith(("redis://", "rediss://")):
                raise ValueError("a Redis Cluster is named by one of its nodes: use redis://HOST:PORT/0")
            if _redis_database(url) != "0":
                raise ValueError("a Redis Cluster has only database 0: end the URL with /0 (or no database)")
        return url

    @field_validator("prefix")
    @classmethod
    def _no_hash_tag(cls, prefix: str, info: ValidationInfo) -> str:
        if info.data.get("cluster") and ("{" in prefix or "}" in prefix):
            raise ValueError("on a Redis Cluster the prefix goes inside each key's hash tag: use no '{' or '}'")
        return prefix


def _redis_database(url: str) -> str:
    """The database a redis:// URL selects, as redis-py reads it: `?db=N`, else the path."""
    parts = urlsplit(url)
    chosen = parse_qs(parts.query).get("db") or [parts.path.strip("/") or "0"]
    return chosen[-1]


class FileSettings(Section):
    dir: str
    url_base: str | None = None


# --- price tables -----------------------------------------------------------------------


class TokenPrices(Section):
    """USD per 1M tokens, by token kind."""

    text_input: Usd | None = None
    cached_text_input: Usd | None = None
    text_output: Usd | None = None
    image_input: Usd | None = None
    cached_image_input: Usd | None = None
    image_output: Usd | None = None


class ModelPrices(Section):
    """A model's prices: per image by quality and size (USD), per 1M tokens, or both.

    `billing` says which one the bill follows. `per_token`: every token kind at its
    token price (per-image figures, if any, serve only estimates: OpenAI's own table).
    `per_image`: each image at its size x quality price, plus input tokens where
    token prices are given (a reseller's table). Unset: per_image when there are
    image prices and no image_output token price, else per_token.
    """

    image: dict[Quality, dict[str, Usd]] | None = None
    tokens: TokenPrices | None = None
    billing: Literal["per_token", "per_image"] | None = None

    @property
    def bills_per_image(self) -> bool:
        if self.billing is not None:
            return self.billing == "per_image"
        return self.image is not None and (self.tokens is None or self.tokens.image_output is None)

    @field_validator("image")
    @classmethod
    def _sizes_are_sizes(cls, image: dict[str, dict[str, Decimal]] | None) -> dict | None:
        for quality, by_size in (image or {}).items():
            for size in by_size:
                if not SIZE_PATTERN.match(size):
                    raise ValueError(f"'{quality}.{size}' is not a size; write WIDTHxHEIGHT, e.g. 1024x1024")
        return image

    @model_validator(mode="after")
    def _has_a_price(self) -> ModelPrices:
        if self.image is None and self.tokens is None:
            raise ValueError("give `image` (per image by quality and size) or `tokens` (per 1M tokens), or both")
        if self.billing == "per_image" and self.image is None:
            raise ValueError("`billing: per_image` needs `image` prices by quality and size")
        if self.billing == "per_token" and self.tokens is None:
            raise ValueError("`billing: per_token` needs `tokens` prices")
        return self


class PriceTable(Section):
    source: PriceSource
    provider: Name  # who publishes these prices
    effective: dt.date
    url: Name
    models: dict[Name, ModelPrices]


# --- providers: each kind's settings are declared with the kind (providers/registry.py) ---


# --- routes --------------------------------------------------------------------------------


class Target(Section):
    provider: Name
    model: Name
    weight: float = Field(default=1.0, ge=0)


class LaunchTarget(Section):
    """The settings a route is launched with (checked by `tollgate launch-check`)."""

    size: str | None = Field(default=None, pattern=SIZE_PATTERN.pattern)
    quality: Quality | None = None
    output_format: OutputFormat | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    background: Literal["transparent", "opaque", "auto"] | None = None


class Route(Section):
    owner: str | None = None
    targets: list[Target] = Field(min_length=1)
    fallbacks: list[Target] = []
    timeout_s: float = Field(default=600, gt=0, description="bound on each attempt")
    retries: int = Field(default=1, ge=0, description="extra tries per target on retryable failures")
    max_retry_wait_s: float = Field(default=10, ge=0, description="a longer retry-after falls back instead")
    target: LaunchTarget | None = None
    max_request_usd: Usd | None = None
    cost_tolerance: Decimal = Field(default=Decimal("0.25"), ge=0)
    review: Literal["required", "none"] = "none"
    unpriced: bool = False
    estimate_output_tokens: int = Field(default=1000, ge=0, description="assumed when a request sets no max")

    @model_validator(mode="after")
    def _some_weight(self) -> Route:
        if not any(target.weight > 0 for target in self.targets):
            raise ValueError("at least one target needs a weight above 0")
        return self


# --- client keys and teams ---------------------------------------------------------------


class Budgets(Section):
    daily_usd: Usd | None = None
    monthly_usd: Usd | None = None


class RateLimits(Section):
    requests_per_minute: int | None = Field(default=None, ge=1)
    images_per_minute: int | None = Field(default=None, ge=1)


class KeySecret(Section):
    """A key given as `key: ${VAR}` (hashed at load) or as its `key_sha256`: client and console keys alike."""

    id: Name
    key: SecretStr | None = None
    key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_secret(self) -> KeySecret:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of `key` (e.g. ${WEB_APP_KEY}) or `key_sha256`")
        if self.key is not None and not self.key.get_secret_value():
            raise ValueError("`key` is empty; set its environment variable or use `key_sha256`")
        return self


class ClientKey(KeySecret):
    team: str | None = None
    routes: list[Name] | None = None  # None: every route
    stage: Literal["validation", "production"] = "production"
    budgets: Budgets | None = None
    rate_limits: RateLimits | None = None


class Team(Section):
    budgets: Budgets | None = None
    rate_limits: RateLimits | None = None


# --- the console (/ui) --------------------------------------------------------------------


class ConsoleKey(KeySecret):
    """A person's key to the console: a reviewer decides on images, finance reads the bill."""

    role: Literal["reviewer", "finance"]


class ConsoleSettings(Section):
    keys: list[ConsoleKey] = []
    session_hours: float = Field(default=8, gt=0, le=24 * 30, description="how long a sign-in lasts")
    # Signs the session cookie; every replica needs the same. Unset: derived from server.admin_key.
    session_secret: SecretStr | None = None

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("use at least 32 random characters, e.g. from `openssl rand -hex 32`")
        return secret


# --- policies --------------------------------------------------------------------------------


class Toggle(Section):
    enabled: bool = True


class ImageParameterSettings(Toggle):
    max_n: int = Field(default=10, ge=1, le=10)
    max_input_images: int = Field(default=16, ge=1, le=16)
    max_input_mb: int = Field(default=50, ge=1, le=50)
    max_input_megapixels: int = Field(default=50, ge=1, le=1000, description="pixels an edit input may claim")


class PolicySettings(Section):
    """Each rule of policies/, on by default; their numbers live with what they govern
    (budgets and rate limits on keys and teams, the cost ceiling on routes)."""

    responses_model_guard: Toggle = Toggle()
    image_parameters: ImageParameterSettings = ImageParameterSettings()
    launch_stage: Toggle = Toggle()
    cost_ceiling: Toggle = Toggle()
    budgets: Toggle = Toggle()
    rate_limits: Toggle = Toggle()
    provider_verification: Toggle = Toggle()


# --- the whole file ------------------------------------------------------------------------


class Config(Section):
    server: ServerSettings = ServerSettings()
    ledger: LedgerSettings = LedgerSettings()
    state: StateSettings = StateSettings()
    files: FileSettings | None = None
    price_tables: dict[Name, PriceTable] = {}
    providers: dict[Name, ProviderSettings] = Field(min_length=1)
    routes: dict[Name, Route] = Field(min_length=1)
    keys: list[ClientKey] | None = None
    teams: dict[Name, Team] = {}
    policies: PolicySettings = PolicySettings()
    console: ConsoleSettings = ConsoleSettings()
