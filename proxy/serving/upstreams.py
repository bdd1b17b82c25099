"""Building each configured provider: the kind picks the class, the config its settings."""

from __future__ import annotations

from providers.base import Provider
from providers.openai import AzureOpenAIProvider, OpenAIProvider

from ..config import ProviderSettings

OPENAI_BASE_URL = "https://api.openai.com/v1"
SIMULATED_API_KEY = "sk-tollgate-simulated"


def build_provider(name: str, settings: ProviderSettings) -> Provider:
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    headers = {header: value.get_secret_value() for header, value in settings.headers.items()}
    common = {"api_key": api_key, "headers": headers, "max_connections": settings.max_connections}
    match settings.kind:
        case "openai" | "openai_compatible":
            return OpenAIProvider(name, settings.base_url or OPENAI_BASE_URL, **common)
        case "azure":
            assert settings.base_url and settings.api_version  # the schema requires both
            return AzureOpenAIProvider(name, settings.base_url, api_version=settings.api_version, **common)
        case "litellm":
            from providers.litellm import LiteLLMProvider  # LiteLLM is heavy: imported only when configured

            return LiteLLMProvider(name, api_key=api_key, base_url=settings.base_url, params=settings.litellm_params)
        case kind:
            raise ValueError(f"provider '{name}': kind '{kind}' is served by the simulator")


def simulated_provider(name: str, settings: ProviderSettings, simulator_url: str | None) -> Provider:
    if settings.kind == "simulator" and settings.base_url:
        base_url = settings.base_url  # a standalone `tollgate simulate`
    else:
        assert simulator_url, "the in-process simulator runs whenever a provider needs it"
        base_url = f"{simulator_url}/{name}/v1"  # the path names the provider, so faults can target one
    return OpenAIProvider(name, base_url, api_key=SIMULATED_API_KEY, max_connections=settings.max_connections)
