"""What crosses the workflow/activity/client boundary, one pydantic model per call.

Every field here is stored in workflow history, so inputs stay small: the task workflow sends
the turn activity only the context and the ids it needs; the agent definition (instructions,
tools, model) never crosses, it is looked up by name in the worker. A payload is capped at
about 2 MiB by Temporal; long conversations continue-as-new between turns.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.workflow_streams import PublishInput, WorkflowStreamState

from factorial.errors import FactorialError, InvalidPayloadError, TaskStateError
from factorial.events import EventStreamConfig

TASK_WORKFLOW = "AgentTaskWorkflow"
EVENTS_WORKFLOW = "OwnerEventsWorkflow"
#: The owners' event streams run on a task queue of their own, served by every worker.
EVENTS_TASK_QUEUE = "factorial-events"
PUBLISH_EVENTS_ACTIVITY = "publish_events"
CANCEL_WORKFLOWS_ACTIVITY = "cancel_workflows"
CANCEL_AND_WAIT_ACTIVITY = "cancel_and_wait"
#: The ``workflow_streams`` protocol by name (as its README documents it; the unit test of
#: ``factorial.workflows._stream`` checks these against the SDK).
STREAM_PUBLISH_SIGNAL = "__temporal_workflow_stream_publish"
STREAM_POLL = "__temporal_workflow_stream_poll"
STREAM_OFFSET_QUERY = "__temporal_workflow_stream_offset"
STREAM_DRAINING = "StreamDraining"
STREAM_TRUNCATED = "TruncatedOffset"
RUN_TURN_ACTIVITY = "run_turn"
RUN_HOOK_ACTIVITY = "run_hook"
STEER_UPDATE = "steer"
COMPLETE_TOOL_UPDATE = "complete_deferred_tool"
SNAPSHOT_QUERY = "snapshot"


class FailureType(StrEnum):
    """The ``type`` of every ``ApplicationError`` Factorial's workflows and activities raise.

    The one place both sides name them: workflows and activities raise these, and the client
    maps them back (``CLIENT_ERRORS``). A ``FactorialError`` raised inside a turn travels
    under its own class name (``ModelBehaviorError``, ``ToolDefinitionError``, ...).
    """

    #: A task's run failed for good; the workflow fails with the run's reason.
    AGENT_RUN_FAILED = "AgentRunFailed"
    #: An update's input was rejected (steering messages without role or content).
    INVALID_PAYLOAD = "InvalidPayloadError"
    #: The task cannot take this update now (it has ended).
    TASK_STATE = "TaskStateError"
    #: A deferred result for a tool call the task is not waiting for.
    UNKNOWN_TOOL_CALL = "UnknownToolCall"
    #: A 0.1 batch (``LegacyBatchWorkflow``) ended before all its payloads arrived.
    BATCH_INCOMPLETE = "BatchIncomplete"
    #: The model's HTTP call failed (retryable for 408/409/429/5xx).
    MODEL_HTTP = "ModelHTTPError"
    #: A turn reached a worker that has no runner for the task's agent.
    AGENT_NOT_REGISTERED = "AgentNotRegisteredError"
    #: A turn's output is over Temporal's payload limit.
    PAYLOAD_TOO_LARGE = "PayloadTooLargeError"
    #: An event stream refused a long-poll: it serves enough of them already.
    STREAM_BUSY = "StreamBusy"


#: The error an update's failure of each type raises from the ``Orchestrator``.
CLIENT_ERRORS: dict[str, type[FactorialError]] = {
    FailureType.TASK_STATE: TaskStateError,
    FailureType.INVALID_PAYLOAD: InvalidPayloadError,
    FailureType.UNKNOWN_TOOL_CALL: TaskStateError,
}


# Search attributes (Keyword); the dev server allows at most 10 custom ones.
SA_OWNER = "FactorialOwnerId"
SA_AGENT = "FactorialAgent"
SA_BATCH = "FactorialBatchId"
SA_STATUS = "FactorialStatus"
SA_PARENT = "FactorialParentTaskId"
SEARCH_ATTRIBUTES = (SA_OWNER, SA_AGENT, SA_BATCH, SA_STATUS, SA_PARENT)


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
    """Input of the owner's event-stream workflow (carried through continue-as-new).

    Also its result when it closes idle: what the next run starts from.
    """

    owner_id: str
    stream_state: WorkflowStreamState | None = None
    config: EventStreamConfig = Field(default_factory=EventStreamConfig)


class PublishEventsInput(BaseModel):
    """Input of ``publish_events``: a workflow's events its stream signal could not deliver.

    ``batch`` carries a publisher id and sequence, so a retried delivery lands once.
    """

    owner_id: str
    batch: PublishInput


# -- batches -------------------------------------------------------------------------------

BATCH_WORKFLOW = "AgentBatchWorkflow"
#: Batches started by 0.1 (``factorial.workflows.legacy_batch``), kept running until they finish.
LEGACY_BATCH_WORKFLOW = "BatchWorkflow"
BATCH_WORKFLOWS = (BATCH_WORKFLOW, LEGACY_BATCH_WORKFLOW)
#: Batches get a task queue of their own, served by every worker process, so their queries
#: and progress do not wait behind thousands of task workflows on the agent's queue.
BATCH_TASK_QUEUE = "factorial-batches"
BATCH_SNAPSHOT_QUERY = "batch_snapshot"
TASK_TURN_SIGNAL = "task_turn"
LEAF_REPORT_SIGNAL = "leaf_report"
CANCEL_REMAINING_SIGNAL = "cancel_remaining"
# Legacy batches only.
ADD_CHUNK_UPDATE = "add_chunk"
SUB_PROGRESS_SIGNAL = "sub_batch_progress"


class BatchInput(BaseModel):
    """Input of a batch workflow: a root (``leaf_sizes`` set) or a leaf (``payloads`` set).

    A batch of at most ``batch_chunk_size`` tasks is one leaf, its own root. A larger one is a
    root that only counts and announces, plus one leaf per chunk of payloads; the client
    starts the leaves (each with its payloads) and then the root.
    """

    batch_id: str  # the public batch id (the root's workflow id)
    owner_id: str
    agent_name: str
    task_queue: str
    total_tasks: int
    policy: TurnPolicy = Field(default_factory=TurnPolicy)
    max_turns: int | None = None
    created_at: datetime | None = None
    parent_task_id: str | None = None
    track_status: bool = True
    # Leaf: its tasks' payloads, the batch index of the first, and its root (if not its own).
    payloads: list[dict[str, Any]] | None = None
    first_index: int = 0
    chunk_index: int = 0
    report_to: str | None = None
    # Leaf: how many of its tasks run at once (0: all; batches from 0.1).
    max_running: int = 0
    # Leaf: how many of its task starts are in flight at once (0: the leaf's default).
    max_starting: int = 0
    # Leaf of a root: seconds between its progress reports.
    report_every: float = 1.0
    # Leaf of a root: progress units its counts must gain before it reports again (0: any),
    # and before its first report (0: ``report_step``); leaves' first reports are staggered.
    report_step: int = 0
    report_first: int = 0
    # Leaf: the lifecycle hooks the agent defines (None: unknown, run the hook activity).
    hooks: list[str] | None = None
    # Root: how many tasks each leaf runs, in chunk order.
    leaf_sizes: list[int] = Field(default_factory=list)
    # Legacy root: how many chunks of payloads ``add_chunk`` will deliver.
    chunk_count: int = 0
    # Sub-agent batches: return every task's output or error in the result.
    collect_results: bool = False

    @property
    def is_leaf(self) -> bool:
        """True for a batch that runs tasks itself."""
        return self.payloads is not None


class BatchChunk(BaseModel):
    """Update input: one chunk of a large batch's payloads."""

    index: int
    first_index: int
    payloads: list[dict[str, Any]]


class TaskTurnReport(BaseModel):
    """This task has finished ``turns`` turns (repeats and reordering are harmless)."""

    task_id: str
    turns: int
    # The task's index in its batch (reports from before it was sent carry only the id).
    index: int | None = None


class TaskTurnReports(BaseModel):
    """Signal from the turn activities of one worker process to a batch."""

    reports: list[TaskTurnReport]


class BatchCounts(BaseModel):
    """Progress counters of a batch or of one sub-batch."""

    done_units: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    terminal_indices: list[int] = Field(default_factory=list)


class LeafReport(BaseModel):
    """Signal from a leaf to its root: its latest counters (absolute, so idempotent)."""

    chunk: int
    counts: BatchCounts
    final: bool = False
    #: On the final report of a stopped leaf: the tasks it cancelled, whose ``run_cancelled``
    #: the root announces (so the leaf's ending is one signal, not two).
    cancelled: list[str] = Field(default_factory=list)


class SubBatchProgress(BaseModel):
    """Signal from a sub-batch to its root: its latest counters (absolute, so idempotent)."""

    chunk: int
    counts: BatchCounts


class SubTaskResult(BaseModel):
    """How one task of a batch ended, as handed back to a forking parent."""

    task_id: str
    status: str
    output: Any = None
    error: str | None = None
    turn: int | None = None


class BatchSnapshot(BaseModel):
    """The batch's state, answered by query and returned when it ends."""

    batch_id: str
    owner_id: str
    agent_name: str
    status: str
    total_tasks: int
    max_progress: int
    counts: BatchCounts
    created_at: datetime | None = None
    parent_task_id: str | None = None
    results: list[SubTaskResult] | None = None


def task_id_of(batch_id: str, index: int) -> str:
    """The deterministic id of a batch's ``index``-th task."""
    return f"{batch_id}-{index}"


def task_index_of(task_id: str) -> int:
    """The batch index in a batch task's id (the inverse of ``task_id_of``)."""
    return int(task_id.rsplit("-", 1)[1])


def batch_task_of(task_id: str) -> tuple[str, int] | None:
    """``(batch_id, index)`` if ``task_id`` has the shape of a batch task's id, else None."""
    batch_id, _, index = task_id.rpartition("-")
    return (batch_id, int(index)) if batch_id and index.isdigit() else None


def leaf_id_of(batch_id: str, chunk: int) -> str:
    """The deterministic workflow id of a batch's ``chunk``-th leaf."""
    return f"{batch_id}-part{chunk}"


def batch_search_attributes(inp: BatchInput, status: str) -> TypedSearchAttributes:
    """The search attributes of a batch's workflows (the batch, its leaves and its tasks)."""
    if not inp.track_status:
        return TypedSearchAttributes.empty
    values = {
        SA_OWNER: inp.owner_id,
        SA_AGENT: inp.agent_name,
        SA_BATCH: inp.batch_id,
        SA_STATUS: status,
        SA_PARENT: inp.parent_task_id,
    }
    return TypedSearchAttributes(
        [SearchAttributePair(SearchAttributeKey.for_keyword(k), v) for k, v in values.items() if v]
    )
