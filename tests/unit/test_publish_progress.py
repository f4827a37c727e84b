"""``@publish_progress``: its three events inside a turn, and a plain call outside one."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from factorial import Agent, AgentContext, ExecutionContext, publish_progress
from factorial.errors import UserError
from factorial.events import EventPublisher
from factorial.testing import ScriptedModel, call_tool, reply


@publish_progress
def double(n: int) -> dict[str, int]:
    """Double a number."""
    if n < 0:
        raise ValueError("negative")
    return {"n": n * 2}


@publish_progress(name="fetch")
async def fetch_page(url: str) -> str:
    """Fetch a page."""
    if not url:
        raise RuntimeError("no url")
    return f"page {url}"


def bound(events: list[dict[str, Any]]) -> Any:
    publisher = EventPublisher(events.append, task_id="t", owner_id="o", agent_name="a")
    return ExecutionContext(task_id="t", owner_id="o", events=publisher)._bind()


def progress(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (e["event_type"], e.get("data", e.get("error")))
        for e in events
        if e["event_type"].startswith("progress_update_")
        and not e["event_type"].startswith(("progress_update_completion", "progress_update_run"))
        and not e["event_type"].startswith("progress_update_tool_action")
    ]


def test_outside_a_turn_it_is_the_plain_function() -> None:
    assert double(2) == {"n": 4}
    assert double.__name__ == "double"
    assert double.__doc__ == "Double a number."


async def test_sync_and_async_functions_publish_three_events() -> None:
    events: list[dict[str, Any]] = []
    token = bound(events)
    try:
        assert double(3) == {"n": 6}
        assert await fetch_page("x") == "page x"
        with pytest.raises(ValueError):
            double(-1)
        with pytest.raises(RuntimeError):
            await fetch_page("")
    finally:
        ExecutionContext._unbind(token)
    assert progress(events) == [
        ("progress_update_double_started", None),
        ("progress_update_double_completed", {"n": 6}),
        ("progress_update_fetch_started", None),
        ("progress_update_fetch_completed", "page x"),
        ("progress_update_double_started", None),
        ("progress_update_double_failed", "ValueError: negative"),
        ("progress_update_fetch_started", None),
        ("progress_update_fetch_failed", "RuntimeError: no url"),
    ]


async def test_a_tool_keeps_its_schema_and_publishes_from_its_thread() -> None:
    events: list[dict[str, Any]] = []
    agent = Agent(
        tools=[double],
        model=ScriptedModel([call_tool("double", n=4), reply("done")]),
    )
    assert agent.tools["double"].openai_schema()["function"]["parameters"]["required"] == ["n"]
    await agent.run_inline(AgentContext(query="go"), on_event=events.append)
    assert progress(events) == [
        ("progress_update_double_started", None),
        ("progress_update_double_completed", {"n": 8}),
    ]


def test_bad_uses_are_refused() -> None:
    with pytest.raises(UserError, match="non-empty"):
        publish_progress(name="")
    with pytest.raises(UserError, match="function or method"):
        publish_progress(len)  # type: ignore[type-var]


async def test_events_from_a_worker_thread_reach_the_sink_on_the_loop_thread() -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[str, int]] = []
    publisher = EventPublisher(
        lambda event: seen.append((event["event_type"], threading.get_ident())),
        task_id="t",
        owner_id="o",
        agent_name="a",
    )
    token = ExecutionContext(task_id="t", owner_id="o", events=publisher)._bind()
    try:
        assert await asyncio.to_thread(double, 1) == {"n": 2}
        publisher.emit("on_the_loop")
    finally:
        ExecutionContext._unbind(token)
    assert seen == [
        ("progress_update_double_started", loop_thread),
        ("progress_update_double_completed", loop_thread),
        ("on_the_loop", loop_thread),
    ]


async def test_a_lifecycle_hook_publishes_too() -> None:
    @publish_progress(name="audit")
    def on_turn_start(agent_ctx: AgentContext, execution_ctx: ExecutionContext) -> int:
        return agent_ctx.turn

    events: list[dict[str, Any]] = []
    agent = Agent(model=ScriptedModel([reply("done")]), on_turn_start=on_turn_start)
    await agent.run_inline(AgentContext(query="go"), on_event=events.append)
    assert progress(events) == [
        ("progress_update_audit_started", None),
        ("progress_update_audit_completed", 0),
    ]
