"""Every kind of provider, listed once. A kind is its settings (one member of the
union tagged by `kind` that `providers:` in the config is read with), the class
that serves it, and what the launch rules ask of it.

To add a kind: a settings class here with its `kind` literal and `build`, and a
place in `ProviderSettings`. Nothing else names the kinds.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .base import Provider

OPENAI_BASE_URL = "https://api.openai.com/v1"
OutputFormat = Literal["png", "jpeg", "webp"]
Name = Annotated[str, Field(min_length=1)]
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP token
# Written by Tollgate for each request: a second one from the config would contradict it.
_REQUESTS_OWN_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection"})


class VerifiedRecord(BaseModel):
    """What the launch rules require to be known before a wrapper or reseller carries traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: Name
    quota: Name
    export_rights: Name
    privacy: Name
    failed_call_billing: Name
    checked: dt.date | None = None
    notes: str | None = None


class ProviderSettingsBase(BaseModel):
    """What every kind is configured with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A gateway, reseller or wrapper: it carries no traffic without a `verified:` record.
    needs_record: ClassVar[bool] = False
    #: It bills its own prices: an official list price would hide its markup.
    bills_own_prices: ClassVar[bool] = False

    base_url: str | None = None
    api_key: SecretStr | None = None
    headers: dict[str, SecretStr] = {}
    billing_owner: Name
    price_table: Name | None = None
    support: str | None = None
    # The image formats the provider returns: the launch rules want each route's format known to
    # work on every provider it may fall back to (`tollgate launch-check` checks it).
    output_formats: list[OutputFormat] | None = None
    verified: VerifiedRecord | None = None
    max_connections: int = Field(default=100, ge=1)
    # What the provider bills for an attempt that fails or is refused: nothing, the
    # input tokens (OpenAI bills a refused image request's input), or the full estimate.
    failed_attempts: Literal["not_billed", "input_tokens", "estimate"] = "not_billed"

    @field_validator("headers")
    @classmethod
    def _headers_can_be_sent(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an HTTP header name (letters, digits and - are)")
            if name.lower() in _REQUESTS_OWN_HEADERS:
                raise ValueError(f"header {name!r} is written by Tollgate for each request; remove it from `headers`")
            if not value.get_secret_value().isprintable():  # the value is not shown: it may be a secret
                raise ValueError(f"the value of header {name!r} holds a line break or another control character")
        return headers

    @property
    def needs_api_key(self) -> bool:
        return True

    @property
    def key_is_missing(self) -> bool:
        """Declared but empty, e.g. `${OPENAI_API_KEY:-}` with the variable unset."""
        return self.api_key is not None and not self.api_key.get_secret_value()

    def build(self, name: str) -> Provider:
        """The provider these settings configure, named `name`."""
        raise NotImplementedError

    def _common(self) -> dict:
        return {
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "headers": {header: value.get_secret_value() for header, value in self.headers.items()},
            "max_connections": self.max_connections,
        }

    def _require_base_url(self) -> None:
        if not self.base_url:
            raise ValueError(f"a provider of kind '{self.kind}' needs `base_url`")  # type: ignore[attr-defined]


class OpenAISettings(ProviderSettingsBase):
    """OpenAI's own API (base_url only to point it elsewhere, e.g. a test double)."""

    kind: Literal["openai"]

    def build(self, name: str) -> Provider:
        from .openai import OpenAIProvider

        return OpenAIProvider(name, self.base_url or OPENAI_BASE_URL, **self._common())


class OpenAICompatibleSettings(ProviderSettingsBase):
    """A gateway or reseller that speaks OpenAI's API at its own `base_url`."""

    kind: Literal["openai_compatible"]
    needs_record: ClassVar[bool] = True
    bills_own_prices: ClassVar[bool] = True

    @model_validator(mode="after")
    def _has_base_url(self) -> OpenAICompatibleSettings:
        self._require_base_url()
        return self

    def build(self, name: str) -> Provider:
        from .openai import OpenAIProvider

        assert self.base_url  # the validator requires it
        return OpenAIProvider(name, self.base_url, **self._common())


class AzureSettings(ProviderSettingsBase):
    """Azure OpenAI: a resource's `base_url` and an `api_version`; a target's model is the deployment."""

    kind: Literal["azure"]
    api_version: str | None = None

    @model_validator(mode="after")
    def _has_resource_and_version(self) -> AzureSettings:
        self._require_base_url()
        if not self.api_version:
            raise ValueError("a provider of kind 'azure' needs `api_version`, e.g. 2025-04-01-preview")
        return self

    def build(self, name: str) -> Provider:
        from .openai import AzureOpenAIProvider

        assert self.base_url and self.api_version  # the validator requires both
        return AzureOpenAIProvider(name, self.base_url, api_version=self.api_version, **self._common())


class LiteLLMSettings(ProviderSettingsBase):
    """Any vendor LiteLLM reaches, named by the target's model (`anthropic/claude-…`)."""

    kind: Literal["litellm"]
    needs_record: ClassVar[bool] = True
    litellm_params: dict[str, str | int | float | bool] = {}

    def build(self, name: str) -> Provider:
        from .litellm import LiteLLMProvider  # LiteLLM is heavy: imported only when configured

        api_key = self.api_key.get_secret_value() if self.api_key else None
        return LiteLLMProvider(name, api_key=api_key, base_url=self.base_url, params=self.litellm_params)


class SimulatorSettings(ProviderSettingsBase):
    """Tollgate's simulator: in the proxy's process, or a `tollgate simulate` at `base_url`."""

    kind: Literal["simulator"]

    @property
    def needs_api_key(self) -> bool:
        return False

    def build(self, name: str) -> Provider:
        raise ValueError(f"provider '{name}': kind 'simulator' is served by the simulator")


ProviderSettings = Annotated[
    OpenAISettings | AzureSettings | OpenAICompatibleSettings | LiteLLMSettings | SimulatorSettings,
    Field(discriminator="kind"),
]

#: Each kind's settings class, by the name `kind:` gives it.
KINDS: dict[str, type[ProviderSettingsBase]] = {
    member.model_fields["kind"].annotation.__args__[0]: member  # type: ignore[union-attr]
    for member in typing.get_args(typing.get_args(ProviderSettings)[0])
}
