"""Tests for the model catalog, settings, clients and request/response types."""

from __future__ import annotations

import pytest

from factorial import models
from factorial.context import AgentContext
from factorial.errors import UserError
from factorial.models import (
    CATALOG,
    PROVIDERS,
    Model,
    ModelClients,
    ModelResponse,
    ModelSettings,
    ToolCall,
    openai_compatible,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove provider env vars so the host environment cannot leak into tests."""
    for key_env, url_env, _ in PROVIDERS.values():
        monkeypatch.delenv(key_env, raising=False)
        monkeypatch.delenv(url_env, raising=False)


def test_catalog_instances() -> None:
    assert models.gpt_41.name == "gpt-4.1"
    assert models.gpt_41.provider == "openai"
    assert models.gpt_41.provider_model_id == "gpt-4.1"
    assert models.gpt_4o_mini.provider_model_id == "gpt-4o-mini"
    assert models.o4_mini.provider_model_id == "o4-mini"
    assert models.claude_4_sonnet.provider == "anthropic"
    assert models.claude_4_sonnet.provider_model_id == "claude-sonnet-4-20250514"
    assert models.claude_4_opus.provider_model_id == "claude-opus-4-20250514"
    assert models.grok_4.provider == "xai"
    assert models.grok_3_mini.provider_model_id == "grok-3-mini"
    assert len(CATALOG) == 14
    for name, model in CATALOG.items():
        assert model.name == name
        assert model.provider in PROVIDERS
        assert model.context_window > 0
        assert model.base_url is None


def test_model_equality_hash_and_repr() -> None:
    a = Model("m", "openai", "m-1", 1000)
    b = Model("m", "openai", "m-1", 2000)
    c = Model("m", "openai", "m-1", 1000, base_url="http://localhost/v1")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != "m"
    assert len({a, b, c}) == 2
    assert repr(a) == "Model(name='m', provider='openai', provider_model_id='m-1')"
    assert "base_url='http://localhost/v1'" in repr(c)


def test_openai_compatible() -> None:
    model = openai_compatible("llama3", base_url="http://localhost:11434/v1")
    assert model.name == "llama3"
    assert model.provider_model_id == "llama3"
    assert model.base_url == "http://localhost:11434/v1"
    assert model.context_window == 128_000
    named = openai_compatible("x", base_url="http://h/v1", name="local", context_window=8192)
    assert (named.name, named.context_window) == ("local", 8192)


def test_settings_resolve_constants_and_callables() -> None:
    settings = ModelSettings(
        temperature=0.2,
        tool_choice=lambda ctx: "required" if ctx.turn == 0 else None,
        max_completion_tokens=lambda ctx: 100 * (ctx.turn + 1),
        seed=7,
    )
    first = settings.resolve(AgentContext(turn=0))
    assert first == {
        "temperature": 0.2,
        "tool_choice": "required",
        "max_completion_tokens": 100,
        "seed": 7,
    }
    later = settings.resolve(AgentContext(turn=2))
    assert later == {"temperature": 0.2, "max_completion_tokens": 300, "seed": 7}


def test_settings_resolve_empty_and_falsy_values() -> None:
    assert ModelSettings().resolve(AgentContext()) == {}
    resolved = ModelSettings(temperature=0, parallel_tool_calls=False).resolve(AgentContext())
    assert resolved == {"temperature": 0, "parallel_tool_calls": False}
    assert "temperature=0" in repr(ModelSettings(temperature=0))


def test_tool_choice_dict_is_passed_through() -> None:
    choice = {"type": "function", "function": {"name": "search"}}
    assert ModelSettings(tool_choice=choice).resolve(AgentContext()) == {"tool_choice": choice}


async def test_clients_use_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("XAI_API_KEY", "xai-env")
    monkeypatch.setenv("XAI_BASE_URL", "https://proxy.example/xai/v1")
    async with ModelClients() as clients:
        openai_client = clients.client_for(models.gpt_41)
        assert openai_client.api_key == "sk-env"
        assert str(openai_client.base_url).rstrip("/") == "https://api.openai.com/v1"
        assert openai_client.max_retries == 0
        xai_client = clients.client_for(models.grok_4)
        assert xai_client.api_key == "xai-env"
        assert str(xai_client.base_url).rstrip("/") == "https://proxy.example/xai/v1"


async def test_clients_explicit_args_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://env.example/v1")
    clients = ModelClients(
        api_keys={"anthropic": "arg-key"}, base_urls={"anthropic": "https://arg.example/v1"}
    )
    try:
        client = clients.client_for(models.claude_4_sonnet)
        assert client.api_key == "arg-key"
        assert str(client.base_url).rstrip("/") == "https://arg.example/v1"
    finally:
        await clients.aclose()


async def test_clients_default_anthropic_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    async with ModelClients() as clients:
        client = clients.client_for(models.claude_4_opus)
        assert str(client.base_url) == "https://api.anthropic.com/v1/"


async def test_model_base_url_wins_and_needs_no_key() -> None:
    model = openai_compatible("llama3", base_url="http://localhost:8000/v1")
    async with ModelClients(base_urls={"openai-compatible": "http://other/v1"}) as clients:
        client = clients.client_for(model)
        assert client.api_key == "unused"
        assert str(client.base_url).rstrip("/") == "http://localhost:8000/v1"


async def test_openai_compatible_key_by_provider() -> None:
    model = openai_compatible("m", base_url="http://h/v1", provider="router")
    async with ModelClients(api_keys={"router": "r-key"}) as clients:
        assert clients.client_for(model).api_key == "r-key"


def test_missing_key_names_env_var() -> None:
    clients = ModelClients()
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        clients.client_for(models.gpt_5)
    with pytest.raises(UserError, match="XAI_API_KEY"):
        clients.client_for(models.grok_3_mini)


def test_unknown_provider_without_base_url() -> None:
    model = Model("mystery", "acme", "m-1", 1000)
    with pytest.raises(UserError, match="unknown model provider 'acme'"):
        ModelClients(api_keys={"acme": "k"}).client_for(model)


async def test_unknown_provider_with_base_urls_arg_needs_key() -> None:
    model = Model("mystery", "acme", "m-1", 1000)
    with pytest.raises(UserError, match="no API key"):
        ModelClients(base_urls={"acme": "http://acme/v1"}).client_for(model)
    async with ModelClients(api_keys={"acme": "k"}, base_urls={"acme": "http://a/v1"}) as clients:
        assert clients.client_for(model).api_key == "k"


async def test_clients_are_cached_per_base_url_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-1")
    clients = ModelClients()
    first = clients.client_for(models.gpt_41)
    assert clients.client_for(models.gpt_5_nano) is first
    monkeypatch.setenv("OPENAI_API_KEY", "sk-2")
    second = clients.client_for(models.gpt_41)
    assert second is not first
    local = clients.client_for(openai_compatible("m", base_url="http://localhost:1/v1"))
    assert local is not first
    await clients.aclose()
    assert first.is_closed() and second.is_closed() and local.is_closed()
    assert clients.client_for(models.gpt_41) is not second
    await clients.aclose()


def test_assistant_message_text() -> None:
    response = ModelResponse(content="hello", finish_reason="stop")
    assert response.assistant_message() == {"role": "assistant", "content": "hello"}


def test_assistant_message_tool_calls() -> None:
    response = ModelResponse(
        tool_calls=[
            ToolCall(id="c1", name="search", arguments='{"q": "x"}'),
            ToolCall(id="c2", name="noop", arguments="{}"),
        ]
    )
    assert response.assistant_message() == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "search", "arguments": '{"q": "x"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "noop", "arguments": "{}"}},
        ],
    }
