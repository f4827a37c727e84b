"""The model catalog, model settings, and the request/response types a turn exchanges.

A ``Model`` names a chat model at a provider and knows how to complete a ``ModelRequest``.
The default implementation speaks the OpenAI chat-completions protocol, which OpenAI,
Anthropic (through its OpenAI-compatible endpoint), xAI and most local servers accept.
``ModelClients`` builds and caches the HTTP clients, resolving keys and base URLs from
explicit arguments or environment variables.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from factorial._model_types import ModelRequest, ModelResponse, ToolCall
from factorial._usage import TokenUsage
from factorial.errors import UserError

if TYPE_CHECKING:
    import openai

    from factorial._fallback import FallbackModel, fallback_models

__all__ = [
    "CATALOG",
    "PROVIDERS",
    "Model",
    "ModelClients",
    "ModelRequest",
    "ModelResponse",
    "FallbackModel",
    "ModelSettings",
    "TokenUsage",
    "ToolCall",
    "claude_4_opus",
    "claude_4_sonnet",
    "fallback_models",
    "gpt_4o",
    "gpt_4o_mini",
    "gpt_5",
    "gpt_5_mini",
    "gpt_5_nano",
    "gpt_41",
    "gpt_41_mini",
    "gpt_41_nano",
    "grok_3_mini",
    "grok_4",
    "o3",
    "o4_mini",
    "openai_compatible",
]


class Model:
    """A chat model at a provider.

    Subclass and override ``complete`` (and ``stream``) to talk to something that is not
    OpenAI-compatible.

    Attributes:
        name: A short readable name, such as ``"gpt-4.1"``.
        provider: The provider key (see ``PROVIDERS``), which selects key and base URL.
        provider_model_id: The model id as the provider names it.
        context_window: How many tokens the model accepts.
        base_url: An explicit API base URL, overriding the provider's.
        prompt_price: What a million prompt (input) tokens cost, in a currency of your
            choice; None (the default) if unknown. Set with ``with_prices``.
        completion_price: What a million completion (output) tokens cost.
    """

    def __init__(
        self,
        name: str,
        provider: str,
        provider_model_id: str,
        context_window: int,
        base_url: str | None = None,
        *,
        prompt_price: float | None = None,
        completion_price: float | None = None,
    ) -> None:
        self.name = name
        self.provider = provider
        self.provider_model_id = provider_model_id
        self.context_window = context_window
        self.base_url = base_url
        self.prompt_price = prompt_price
        self.completion_price = completion_price

    def with_prices(self, *, prompt: float, completion: float) -> Model:
        """A copy of this model that knows its prices, per million tokens.

        Turns, tasks and batches then report a ``cost`` with their token usage.

        Example::

            priced = gpt_41_mini.with_prices(prompt=0.40, completion=1.60)  # USD per 1M tokens

        Raises:
            UserError: A price is negative.
        """
        if prompt < 0 or completion < 0:
            raise UserError(f"model prices cannot be negative: {prompt}, {completion}")
        priced = copy.copy(self)
        priced.prompt_price = prompt
        priced.completion_price = completion
        return priced

    def for_attempt(self, attempt: int) -> Model:
        """The model that answers ``attempt`` of a turn: this one (see ``fallback_models``)."""
        return self

    def priced(self, usage: TokenUsage) -> TokenUsage:
        """``usage`` with its ``cost`` at this model's prices (unchanged if it has none)."""
        if self.prompt_price is None or self.completion_price is None:
            return usage
        cost = (
            usage.prompt_tokens * self.prompt_price
            + usage.completion_tokens * self.completion_price
        ) / 1_000_000
        return usage.model_copy(update={"cost": round(cost, 10)})

    async def complete(self, request: ModelRequest, clients: ModelClients) -> ModelResponse:
        """Run one OpenAI-compatible chat completion.

        Raises:
            ModelHTTPError: The provider answered with an error status or not at all.
            ModelBehaviorError: The provider's answer cannot be used.
        """
        from factorial._openai import chat_completion

        return await chat_completion(clients.client_for(self), self, request)

    async def stream(
        self, request: ModelRequest, clients: ModelClients, on_text: Callable[[str], None]
    ) -> ModelResponse:
        """Run one streamed chat completion; ``on_text`` gets each text delta as it arrives.

        Used instead of ``complete`` by an ``Agent(stream=True)``. Override it (with
        ``complete``) for a model that is not OpenAI-compatible; the response must be the
        same ``complete`` would return, tool calls reassembled. A subclass that overrides
        only ``complete`` streams its whole answer as one delta.

        Raises:
            ModelHTTPError: The provider answered with an error status, or the stream broke off.
            ModelBehaviorError: The provider's answer cannot be used.
        """
        if type(self).complete is not Model.complete:
            response = await self.complete(request, clients)
            if response.content:
                on_text(response.content)
            return response
        from factorial._openai import chat_completion_stream

        return await chat_completion_stream(clients.client_for(self), self, request, on_text)

    def _key(self) -> tuple[str, str, str, str | None]:
        return (self.name, self.provider, self.provider_model_id, self.base_url)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = f", base_url={self.base_url!r}" if self.base_url else ""
        return (
            f"{type(self).__name__}(name={self.name!r}, provider={self.provider!r}, "
            f"provider_model_id={self.provider_model_id!r}{extra})"
        )


class ModelSettings:
    """Sampling settings; each value is a constant or a callable of the ``AgentContext``.

    Extra keyword arguments are passed to the provider as they are.

    Example::

        ModelSettings(
            temperature=0.2,
            tool_choice=lambda ctx: "required" if ctx.turn == 0 else None,
        )
    """

    def __init__(
        self,
        temperature: float | Callable[[Any], Any] | None = None,
        max_completion_tokens: int | Callable[[Any], Any] | None = None,
        tool_choice: str | dict[str, Any] | Callable[[Any], Any] | None = None,
        parallel_tool_calls: bool | Callable[[Any], Any] | None = None,
        top_p: float | Callable[[Any], Any] | None = None,
        **extra: Any,
    ) -> None:
        self.values: dict[str, Any] = {
            "temperature": temperature,
            "max_completion_tokens": max_completion_tokens,
            "tool_choice": tool_choice,
            "parallel_tool_calls": parallel_tool_calls,
            "top_p": top_p,
            **extra,
        }

    def resolve(self, agent_ctx: Any) -> dict[str, Any]:
        """Return the settings for this turn: callables called with ``agent_ctx``, Nones dropped."""
        resolved: dict[str, Any] = {}
        for key, value in self.values.items():
            if callable(value):
                value = value(agent_ctx)
            if value is not None:
                resolved[key] = value
        return resolved

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.values.items() if v is not None)
        return f"ModelSettings({shown})"


PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    # Anthropic's OpenAI-compatible endpoint.
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com/v1/"),
    "xai": ("XAI_API_KEY", "XAI_BASE_URL", "https://api.x.ai/v1"),
}
"""Provider -> (API key env var, base URL env var, default base URL)."""

_NO_KEY = "unused"


class ModelClients:
    """Builds and caches one ``openai.AsyncOpenAI`` per (base URL, API key).

    Clients are created with ``max_retries=0``: Temporal owns retries.

    Args:
        api_keys: API keys by provider; environment variables fill the gaps.
        base_urls: Base URLs by provider; environment variables and defaults fill the gaps.
    """

    def __init__(
        self,
        api_keys: Mapping[str, str] | None = None,
        base_urls: Mapping[str, str] | None = None,
    ) -> None:
        self._api_keys = dict(api_keys or {})
        self._base_urls = dict(base_urls or {})
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}

    def client_for(self, model: Model) -> openai.AsyncOpenAI:
        """Return the (cached) client for ``model``.

        Raises:
            UserError: The provider is unknown, or no API key is configured for it.
        """
        base_url = self.base_url_for(model)
        api_key = self.api_key_for(model)
        cache_key = (base_url, api_key)
        client = self._clients.get(cache_key)
        if client is None:
            import openai  # on first use: a worker whose models are not OpenAI's never loads it

            client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)
            self._clients[cache_key] = client
        return client

    def base_url_for(self, model: Model) -> str:
        """Return the base URL: the model's, else ``base_urls``, else the env var, else default.

        Raises:
            UserError: The provider is unknown and no base URL is given.
        """
        if model.base_url:
            return model.base_url
        if self._base_urls.get(model.provider):
            return self._base_urls[model.provider]
        if model.provider not in PROVIDERS:
            known = ", ".join(sorted(PROVIDERS))
            raise UserError(
                f"unknown model provider {model.provider!r} for model {model.name!r}: "
                f"use one of {known}, or give the model a base_url"
            )
        _, url_env, default_url = PROVIDERS[model.provider]
        return os.environ.get(url_env) or default_url

    def api_key_for(self, model: Model) -> str:
        """Return the API key: ``api_keys``, else the provider's env var.

        A model with an explicit ``base_url`` and no key anywhere gets a placeholder key,
        as local servers need none.

        Raises:
            UserError: No key is configured for the model's provider.
        """
        if self._api_keys.get(model.provider):
            return self._api_keys[model.provider]
        key_env = PROVIDERS[model.provider][0] if model.provider in PROVIDERS else None
        if key_env and os.environ.get(key_env):
            return os.environ[key_env]
        if model.base_url:
            return _NO_KEY
        where = f"set {key_env} or pass" if key_env else "pass"
        raise UserError(
            f"no API key for model {model.name!r} (provider {model.provider!r}): "
            f"{where} ModelClients(api_keys={{{model.provider!r}: ...}})"
        )

    async def aclose(self) -> None:
        """Close every cached client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def __aenter__(self) -> ModelClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def openai_compatible(
    model_id: str,
    *,
    base_url: str,
    context_window: int = 128_000,
    name: str | None = None,
    provider: str = "openai-compatible",
) -> Model:
    """Return a model served by any OpenAI-compatible server (vLLM, Ollama, LM Studio, ...).

    Args:
        model_id: The model id the server expects.
        base_url: The server's API base URL, such as ``"http://localhost:8000/v1"``.
        context_window: How many tokens the model accepts.
        name: A readable name; defaults to ``model_id``.
        provider: The key to look up in ``ModelClients(api_keys=...)``; without one
            there the client sends a placeholder key.
    """
    return Model(
        name=name or model_id,
        provider=provider,
        provider_model_id=model_id,
        context_window=context_window,
        base_url=base_url,
    )


gpt_4o = Model("gpt-4o", "openai", "gpt-4o", 128_000)
gpt_4o_mini = Model("gpt-4o-mini", "openai", "gpt-4o-mini", 128_000)
gpt_41 = Model("gpt-4.1", "openai", "gpt-4.1", 1_047_576)
gpt_41_mini = Model("gpt-4.1-mini", "openai", "gpt-4.1-mini", 1_047_576)
gpt_41_nano = Model("gpt-4.1-nano", "openai", "gpt-4.1-nano", 1_047_576)
gpt_5 = Model("gpt-5", "openai", "gpt-5", 400_000)
gpt_5_mini = Model("gpt-5-mini", "openai", "gpt-5-mini", 400_000)
gpt_5_nano = Model("gpt-5-nano", "openai", "gpt-5-nano", 400_000)
o3 = Model("o3", "openai", "o3", 200_000)
o4_mini = Model("o4-mini", "openai", "o4-mini", 200_000)
claude_4_sonnet = Model("claude-4-sonnet", "anthropic", "claude-sonnet-4-20250514", 200_000)
claude_4_opus = Model("claude-4-opus", "anthropic", "claude-opus-4-20250514", 200_000)
grok_4 = Model("grok-4", "xai", "grok-4", 256_000)
grok_3_mini = Model("grok-3-mini", "xai", "grok-3-mini", 131_072)

CATALOG: dict[str, Model] = {
    m.name: m
    for m in (
        gpt_4o,
        gpt_4o_mini,
        gpt_41,
        gpt_41_mini,
        gpt_41_nano,
        gpt_5,
        gpt_5_mini,
        gpt_5_nano,
        o3,
        o4_mini,
        claude_4_sonnet,
        claude_4_opus,
        grok_4,
        grok_3_mini,
    )
}
"""The ready-made models by ``name``."""


def __getattr__(name: str) -> Any:
    # ``FallbackModel`` subclasses ``Model``: loaded on first use, so that importing either
    # module first works.
    if name in ("FallbackModel", "fallback_models"):
        from factorial import _fallback

        return getattr(_fallback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
