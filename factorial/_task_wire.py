"""What a task sends and receives, one pydantic model per call.

Its workflow's input, its turn and hook activities' inputs and outputs, its updates (steer,
a deferred tool's result), and its snapshot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from factorial._budget import Budget
from factorial._usage import TokenUsage

__all__ = [
    "Budget",
    "ChildBatchRequest",
    "CompleteToolInput",
    "DEFAULT_TURN_EXECUTION",
    "HookInput",
    "OutsideHook",
    "PendingToolCall",
    "SteerInput",
    "TaskInput",
    "TaskSnapshot",
    "TaskUsageReport",
    "TokenUsage",
    "ToolResult",
    "TurnExecution",
    "TurnInput",
    "TurnOutput",
    "TurnPolicy",
    "steering_problem",
]


#: How a task runs its turns (see ``factorial.workflows.agent_task``): ``activity`` as regular
#: activities, ``local`` as local activities, ``auto`` local while turns are short.
TurnExecution = Literal["auto", "activity", "local"]
#: ``AgentWorkerConfig``'s default.
DEFAULT_TURN_EXECUTION: TurnExecution = "auto"


class TurnPolicy(BaseModel):
    """Retry and timeout settings of the turn activity, copied from ``AgentWorkerConfig``."""

    # Histories recorded before turn modes carry no value: they ran regular activities.
    turn_execution: TurnExecution = "activity"
    max_retries: int = 3
    initial_backoff: float = 1.0
    backoff_coefficient: float = 2.0
    max_backoff: float = 60.0
    turn_timeout: float = 300.0
    heartbeat_timeout: float = 30.0
    continue_as_new_bytes: int = 8 * 1024 * 1024


class TaskInput(BaseModel):
    """Input of ``AgentTaskWorkflow`` (also what it carries through continue-as-new)."""

    task_id: str
    owner_id: str
    agent_name: str
    payload: dict[str, Any]
    policy: TurnPolicy = Field(default_factory=TurnPolicy)
    created_at: datetime | None = None
    batch_id: str | None = None
    parent_task_id: str | None = None
    # False where the server has no FactorialStatus search attribute (time-skipping server).
    track_status: bool = True
    # The batch workflow that started this task and counts its turns (a sub-batch's id).
    report_to: str | None = None
    # That batch publishes this task's terminal events, together with its own (fewer
    # signals and workflow tasks than the task sending them itself).
    terminal_events_by_batch: bool = False
    # The task's index in that batch (for its turn reports).
    index: int | None = None
    # Seconds its turn reports may wait to go with others' in one signal (0: at once).
    turn_report_delay: float = 0.0
    # The lifecycle hooks its agent defines; None (unknown) runs the hook activity anyway.
    hooks: list[str] | None = None
    # The ended task this one continues (``Orchestrator.resume_task``).
    resumed_from: str | None = None
    # Its budget (``factorial._budget``): its agent's, within what its batch or parent left.
    budget: Budget | None = None
    # Its batch has a budget: signal it the task's usage after every turn (``task_usage``).
    report_usage: bool = False
    # Carried across continue-as-new only.
    started: bool = False
    steering: list[list[dict[str, Any]]] = Field(default_factory=list)
    usage: TokenUsage | None = None


class PendingToolCall(BaseModel):
    """A deferred tool call waiting for its result."""

    tool_call_id: str
    tool_name: str
    timeout: float


class ToolResult(BaseModel):
    """A deferred tool's result as shown to the model."""

    tool_call_id: str
    content: str
    is_error: bool = False


class TurnInput(BaseModel):
    """Input of the ``run_turn`` activity."""

    task_id: str
    owner_id: str
    agent_name: str
    context: dict[str, Any]
    batch_id: str | None = None
    parent_task_id: str | None = None
    report_to: str | None = None
    index: int | None = None
    report_delay: float = 0.0
    # Deferred results delivered since the last turn (for ``on_pending_tool_results``).
    resumed_results: list[ToolResult] = Field(default_factory=list)


class ChildBatchRequest(BaseModel):
    """Children a forking tool asked for; the task workflow starts them as a child batch."""

    batch_id: str
    agent_name: str
    task_queue: str
    policy: TurnPolicy
    max_turns: int | None = None
    payloads: list[dict[str, Any]]
    tool_call_id: str
    timeout: float
    hooks: list[str] | None = None
    #: The forking tool's join: the batch stops once this many children have completed.
    join: int | None = None
    # The child agent's own budget, for each of its tasks.
    task_budget: Budget | None = None


class TurnOutput(BaseModel):
    """Result of the ``run_turn`` activity: the new context and what to do next."""

    context: dict[str, Any]
    done: bool = False
    output: Any = None
    pending_tool_calls: list[PendingToolCall] = Field(default_factory=list)
    child_batches: list[ChildBatchRequest] = Field(default_factory=list)
    # Set when the run must fail with the context above kept (e.g. max_turns ran out).
    failure: str | None = None
    # How long the turn's last attempt ran, in seconds (``auto`` turn mode chooses by it).
    seconds: float | None = None
    # This result's size as a Temporal payload (encoded), give or take a few bytes.
    encoded_bytes: int | None = None
    # The tokens (and cost) of the turn's model call (None: not reported).
    usage: TokenUsage | None = None
    # A local turn stopped because its task's cancellation was requested (the context is
    # the turn's input, unchanged; ``factorial.activities.interruption``).
    interrupted: bool = False


#: The hooks that run outside a turn, in a ``run_hook`` activity of their own.
OutsideHook = Literal["on_run_end", "on_run_cancelled"]


class HookInput(BaseModel):
    """Input of the ``run_hook`` activity (hooks that run outside a turn)."""

    hook: OutsideHook
    task_id: str
    owner_id: str
    agent_name: str
    context: dict[str, Any]
    error: str | None = None
    batch_id: str | None = None
    parent_task_id: str | None = None


class SteerInput(BaseModel):
    """Update input: messages to add to the conversation at the next turn boundary."""

    messages: list[dict[str, Any]]


_STEERING_ROLES = frozenset({"user", "system", "developer", "assistant"})


def steering_problem(messages: list[dict[str, Any]]) -> str | None:
    """Why these steering messages are refused, or None if they are fine."""
    if not messages:
        return "no messages to steer with"
    for message in messages:
        if message.get("role") not in _STEERING_ROLES or "content" not in message:
            return (
                "steering messages need a role (user, system, developer or assistant) and a content"
            )
    return None


class CompleteToolInput(BaseModel):
    """Update input: the result of a pending deferred tool call."""

    tool_call_id: str
    result: str


class TaskUsageReport(BaseModel):
    """Signal from a task to its batch with a budget: its usage so far (absolute)."""

    index: int
    turns: int
    usage: TokenUsage


class TaskSnapshot(BaseModel):
    """The task's state, answered by query while it runs and returned when it ends."""

    task_id: str
    owner_id: str
    agent_name: str
    status: str
    turn: int = 0
    output: Any = None
    error: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    pending_tool_call_ids: list[str] = Field(default_factory=list)
    batch_id: str | None = None
    parent_task_id: str | None = None
    created_at: datetime | None = None
    #: Tokens (and cost) of the task's turns so far, and of its sub-agents' ended batches.
    usage: TokenUsage = Field(default_factory=TokenUsage)
    #: The ended task this one continues (``Orchestrator.resume_task``).
    resumed_from: str | None = None
