"""What crosses the workflow/activity/client boundary, one pydantic model per call.

Every field here is stored in workflow history, so inputs stay small: the task workflow sends
the turn activity only the context and the ids it needs; the agent definition (instructions,
tools, model) never crosses, it is looked up by name in the worker. A payload is capped at
about 2 MiB by Temporal; long conversations continue-as-new between turns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

TASK_WORKFLOW = "AgentTaskWorkflow"
EVENTS_WORKFLOW = "OwnerEventsWorkflow"
RUN_TURN_ACTIVITY = "run_turn"
RUN_HOOK_ACTIVITY = "run_hook"
STEER_UPDATE = "steer"
COMPLETE_TOOL_UPDATE = "complete_deferred_tool"
SNAPSHOT_QUERY = "snapshot"

# Search attributes (Keyword); the dev server allows at most 10 custom ones.
SA_OWNER = "FactorialOwnerId"
SA_AGENT = "FactorialAgent"
SA_BATCH = "FactorialBatchId"
SA_STATUS = "FactorialStatus"
SA_PARENT = "FactorialParentTaskId"
SEARCH_ATTRIBUTES = (SA_OWNER, SA_AGENT, SA_BATCH, SA_STATUS, SA_PARENT)


class TurnPolicy(BaseModel):
    """Retry and timeout settings of the turn activity, copied from ``AgentWorkerConfig``."""

    max_retries: int = 3
    initial_backoff: float = 1.0
    backoff_coefficient: float = 2.0
    max_backoff: float = 60.0
    turn_timeout: float = 300.0
    heartbeat_timeout: float = 30.0


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
    # Carried across continue-as-new only.
    started: bool = False
    steering: list[list[dict[str, Any]]] = Field(default_factory=list)


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
    # Deferred results delivered since the last turn (for ``on_pending_tool_results``).
    resumed_results: list[ToolResult] = Field(default_factory=list)


class TurnOutput(BaseModel):
    """Result of the ``run_turn`` activity: the new context and what to do next."""

    context: dict[str, Any]
    done: bool = False
    output: Any = None
    pending_tool_calls: list[PendingToolCall] = Field(default_factory=list)
    # Set when the run must fail with the context above kept (e.g. max_turns ran out).
    failure: str | None = None


class HookInput(BaseModel):
    """Input of the ``run_hook`` activity (hooks that run outside a turn)."""

    hook: Literal["on_run_end", "on_run_cancelled"]
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


class CompleteToolInput(BaseModel):
    """Update input: the result of a pending deferred tool call."""

    tool_call_id: str
    result: str


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


class EventsInput(BaseModel):
    """Input of the owner's event-stream workflow (carried through continue-as-new)."""

    owner_id: str
    stream_state: WorkflowStreamState | None = None
