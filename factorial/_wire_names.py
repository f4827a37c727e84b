"""The names on the wire, and the types of the failures that cross the boundary.

The names of workflows, activities, signals, updates, queries, task queues and search
attributes: workflows, activities and the client all use these constants, never the strings.
"""

from __future__ import annotations

from enum import StrEnum

from factorial.errors import FactorialError, InvalidPayloadError, TaskStateError

__all__ = [
    "ADD_CHUNK_UPDATE",
    "BATCH_SNAPSHOT_QUERY",
    "BATCH_SUMMARY_MEMO",
    "IDEMPOTENCY_MEMO",
    "RESUMED_FROM_MEMO",
    "BATCH_TASK_QUEUE",
    "BATCH_WORKFLOW",
    "BATCH_WORKFLOWS",
    "CANCEL_REMAINING_SIGNAL",
    "CANCEL_WORKFLOWS_ACTIVITY",
    "CLIENT_ERRORS",
    "COMPLETE_TOOL_UPDATE",
    "EVENTS_TASK_QUEUE",
    "EVENTS_WORKFLOW",
    "FailureType",
    "LEAF_GO_SIGNAL",
    "LEAF_REPORT_SIGNAL",
    "LEGACY_BATCH_WORKFLOW",
    "PUBLISH_EVENTS_ACTIVITY",
    "RUN_HOOK_ACTIVITY",
    "RETRY_OF_MEMO",
    "RUN_TURN_ACTIVITY",
    "SA_AGENT",
    "SA_BATCH",
    "SA_OWNER",
    "SA_PARENT",
    "SA_STATUS",
    "SEARCH_ATTRIBUTES",
    "SNAPSHOT_QUERY",
    "STEER_UPDATE",
    "STREAM_DRAINING",
    "STREAM_OFFSET_QUERY",
    "STREAM_POLL",
    "STREAM_PUBLISH_SIGNAL",
    "STREAM_TRUNCATED",
    "SUB_PROGRESS_SIGNAL",
    "TASK_TURN_SIGNAL",
    "TASK_USAGE_SIGNAL",
    "TASK_WORKFLOW",
]

TASK_WORKFLOW = "AgentTaskWorkflow"
EVENTS_WORKFLOW = "OwnerEventsWorkflow"
#: The owners' event streams run on a task queue of their own, served by every worker.
EVENTS_TASK_QUEUE = "factorial-events"
PUBLISH_EVENTS_ACTIVITY = "publish_events"
CANCEL_WORKFLOWS_ACTIVITY = "cancel_workflows"
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


#: The memo key of a batch that retries another batch's failed tasks: the other batch's id.
RETRY_OF_MEMO = "factorial_retry_of"

#: The memo key of a task or batch enqueued with an idempotency key: what was enqueued
#: (``factorial._idempotency``).
IDEMPOTENCY_MEMO = "factorial_idempotency"
#: The memo key of a task started by ``resume_task``: the id of the task it continues.
RESUMED_FROM_MEMO = "factorial_resumed_from"

# Search attributes (Keyword); the dev server allows at most 10 custom ones.
#: The memo key of a batch's summary (``factorial.workflows._summary``).
BATCH_SUMMARY_MEMO = "factorial_batch"
SA_OWNER = "FactorialOwnerId"
SA_AGENT = "FactorialAgent"
SA_BATCH = "FactorialBatchId"
SA_STATUS = "FactorialStatus"
SA_PARENT = "FactorialParentTaskId"
SEARCH_ATTRIBUTES = (SA_OWNER, SA_AGENT, SA_BATCH, SA_STATUS, SA_PARENT)

#: Batch workflows, their queue and their messages.
BATCH_WORKFLOW = "AgentBatchWorkflow"
#: Batches started by 0.1 (``factorial.workflows.legacy_batch``), kept running until they finish.
LEGACY_BATCH_WORKFLOW = "BatchWorkflow"
BATCH_WORKFLOWS = (BATCH_WORKFLOW, LEGACY_BATCH_WORKFLOW)
#: Batches get a task queue of their own, served by every worker process, so their queries
#: and progress do not wait behind thousands of task workflows on the agent's queue.
BATCH_TASK_QUEUE = "factorial-batches"
BATCH_SNAPSHOT_QUERY = "batch_snapshot"
TASK_TURN_SIGNAL = "task_turn"
#: A task of a batch with a budget: its usage so far, after each turn.
TASK_USAGE_SIGNAL = "task_usage"
LEAF_REPORT_SIGNAL = "leaf_report"
#: A root to a leaf that waits for its turn: start your tasks.
LEAF_GO_SIGNAL = "leaf_go"
CANCEL_REMAINING_SIGNAL = "cancel_remaining"
# Legacy batches only.
ADD_CHUNK_UPDATE = "add_chunk"
SUB_PROGRESS_SIGNAL = "sub_batch_progress"
