"""The agent definition and its in-process turn loop (no Temporal)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import factorial
from factorial import (
    Agent,
    AgentContext,
    BaseAgent,
    ExecutionContext,
    HookSignatureError,
    InlineRunError,
    InvalidPayloadError,
    MaxTurnsExceeded,
    ModelSettings,
    UserError,
    deferred_tool,
)
from factorial.models import ModelRequest, gpt_41, gpt_41_mini
from factorial.testing import Reply, ScriptedModel, call_tool, reply


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_public_api_is_pinned() -> None:
    assert sorted(factorial.__all__) == sorted(
        [
            "Agent",
            "AgentContext",
            "AgentEvent",
            "AgentNotRegisteredError",
            "AgentRunError",
            "AgentWorkerConfig",
            "BaseAgent",
            "Batch",
            "BatchInfo",
            "BatchMetadata",
            "BatchNotFoundError",
            "Budget",
            "BudgetExceeded",
            "EventPublisher",
            "EventStreamConfig",
            "EventStreamError",
            "EventsExpiredError",
            "ExecutionContext",
            "FactorialError",
            "FailurePolicy",
            "FunctionTool",
            "HookSignatureError",
            "IdempotencyConflictError",
            "InlineRunError",
            "InvalidIdError",
            "InvalidPayloadError",
            "MaxTurnsExceeded",
            "Model",
            "ModelBehaviorError",
            "ModelHTTPError",
            "ModelSettings",
            "NotFoundError",
            "Orchestrator",
            "PayloadTooLargeError",
            "Quorum",
            "RunCompletion",
            "Task",
            "TaskCancelledError",
            "TaskFailedError",
            "TaskInfo",
            "TaskMetadata",
            "TaskNotFoundError",
            "TaskResult",
            "TaskStateError",
            "TaskStatus",
            "TemporalUnavailableError",
            "TokenUsage",
            "ToolDefinitionError",
            "TurnCompletion",
            "UserError",
            "deferred_result",
            "deferred_tool",
            "forking_tool",
            "function_tool",
            "fallback_models",
            "publish_progress",
        ]
    )
    for name in factorial.__all__:
        assert getattr(factorial, name) is not None
    assert issubclass(factorial.TaskNotFoundError, factorial.FactorialError)
    assert issubclass(factorial.InvalidPayloadError, factorial.UserError)
    assert issubclass(factorial.ModelHTTPError, factorial.AgentRunError)


def test_agent_names_default_to_snake_case_class_names() -> None:
    class ResearchAssistant(BaseAgent[AgentContext]):
        pass

    assert ResearchAssistant().name == "research_assistant"
    assert Agent().name == "agent"
    assert Agent(name="custom").name == "custom"


@pytest.mark.parametrize(
    ("hook", "bad"),
    [
        ("on_run_start", lambda ctx: None),
        ("on_run_end", lambda ctx, execution_ctx: None),
        ("on_turn_end", lambda: None),
        ("on_pending_tool_results", lambda ctx, execution_ctx, results, extra: None),
        ("on_run_cancelled", "not callable"),
    ],
)
def test_hook_signatures_are_checked_at_construction(hook: str, bad: Any) -> None:
    with pytest.raises(HookSignatureError, match=hook):
        Agent(**{hook: bad})


def test_hooks_with_defaults_or_varargs_are_accepted() -> None:
    Agent(
        on_run_start=lambda ctx, execution_ctx, extra=None: None,
        on_turn_end=lambda *args: None,
    )


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(UserError):
        Agent(max_turns=0)
    with pytest.raises(UserError):
        Agent(output_type=dict)  # type: ignore[arg-type]
    with pytest.raises(UserError):
        Agent(context_class=dict)  # type: ignore[arg-type]


class Profile(AgentContext):
    user_name: str
    visits: int = 0


def test_payload_validation_keeps_custom_fields() -> None:
    agent = Agent(context_class=Profile)
    ctx = agent.validate_payload({"user_name": "ada", "query": "hi", "extra_field": [1]})
    assert isinstance(ctx, Profile)
    assert ctx.user_name == "ada"
    assert ctx.model_dump()["extra_field"] == [1]
    with pytest.raises(InvalidPayloadError, match="user_name"):
        agent.validate_payload({"query": "hi"})
    with pytest.raises(InvalidPayloadError):
        agent.validate_payload(AgentContext(query="wrong class"))


async def test_run_inline_runs_the_turn_loop() -> None:
    events: list[dict[str, Any]] = []
    agent = Agent(
        instructions=lambda ctx: f"Be brief with {ctx.query!r}.",
        tools=[add],
        model=ScriptedModel([call_tool("add", a=1, b=2), reply("3")]),
    )

    run = await agent.run_inline(AgentContext(query="1+2"), on_event=events.append)

    assert run.status == "completed"
    assert run.output == "3"
    assert run.context.turn == 2
    assert [m["role"] for m in run.context.messages] == ["user", "assistant", "tool", "assistant"]
    assert run.context.messages[2]["content"] == "3"
    types = [e["event_type"] for e in events]
    assert types[0] == "run_started"
    assert types[1] == "progress_update_run_turn_started"
    assert types[-2:] == ["agent_output", "run_completed"]
    assert types.count("progress_update_completion_completed") == 2
    assert all(e["owner_id"] == "inline" for e in events)


async def test_model_and_settings_can_depend_on_the_context() -> None:
    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> Reply:
        seen.append(request)
        return reply("done")

    scripted = ScriptedModel(script)
    agent = Agent(
        model=lambda ctx: scripted if ctx.query == "cheap" else gpt_41,
        model_settings=ModelSettings(temperature=lambda ctx: 0.0 if ctx.turn == 0 else 1.0),
    )

    await agent.run_inline({"query": "cheap"})

    assert seen[0].settings == {"temperature": 0.0}
    assert seen[0].messages[0] == {"role": "user", "content": "cheap"}
    assert agent.resolve_model(AgentContext(query="other")) is gpt_41
    assert Agent().resolve_model(AgentContext()) is gpt_41_mini


async def test_run_inline_refuses_deferred_tools() -> None:
    @deferred_tool(timeout=10)
    def approve() -> str:
        """Ask for approval."""
        return "asked"

    with pytest.raises(InlineRunError, match="approve"):
        await Agent(tools=[approve]).run_inline({})


async def test_run_inline_max_turns() -> None:
    agent = Agent(
        tools=[add], max_turns=3, model=ScriptedModel(lambda r: call_tool("add", a=1, b=1))
    )
    with pytest.raises(MaxTurnsExceeded):
        await agent.run_inline({})


class Verdict(BaseModel):
    approved: bool
    reason: str


async def test_structured_output_from_json_text() -> None:
    agent = Agent(
        output_type=Verdict,
        model=ScriptedModel([reply("I think yes"), reply('{"approved": true, "reason": "fine"}')]),
    )
    run = await agent.run_inline({})
    assert run.output == {"approved": True, "reason": "fine"}
    reminder = [m for m in run.context.messages if m["role"] == "user"]
    assert len(reminder) == 1 and "final_output" in reminder[0]["content"]


async def test_execution_context_is_available_inside_tools() -> None:
    seen: list[str] = []

    def whoami(execution_ctx: ExecutionContext) -> str:
        """Tell who runs."""
        seen.append(ExecutionContext.current().task_id)
        return execution_ctx.owner_id

    agent = Agent(tools=[whoami], model=ScriptedModel([call_tool("whoami"), reply("ok")]))
    run = await agent.run_inline({}, owner_id="ada", task_id="t-1")
    assert [m["content"] for m in run.context.messages if m["role"] == "tool"] == ["ada"]
    assert seen == ["t-1"]
    with pytest.raises(LookupError):
        ExecutionContext.current()
