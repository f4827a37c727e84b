"""Factorial on Temporal: run LLM agent tasks reliably at high concurrency.

The public API; everything else is internal. The model catalog lives in ``factorial.models``
and the scripted test model in ``factorial.testing``.
"""

from factorial.agent import Agent, BaseAgent, RunCompletion, TurnCompletion
from factorial.context import AgentContext, ExecutionContext
from factorial.errors import (
    AgentNotRegisteredError,
    AgentRunError,
    BatchNotFoundError,
    EventsExpiredError,
    EventStreamError,
    FactorialError,
    HookSignatureError,
    InlineRunError,
    InvalidIdError,
    InvalidPayloadError,
    MaxTurnsExceeded,
    ModelBehaviorError,
    ModelHTTPError,
    NotFoundError,
    PayloadTooLargeError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
    TaskStateError,
    TemporalUnavailableError,
    ToolDefinitionError,
    UserError,
)
from factorial.events import AgentEvent, EventPublisher, EventStreamConfig
from factorial.models import Model, ModelSettings
from factorial.orchestrator import Orchestrator
from factorial.task import Batch, BatchMetadata, Task, TaskMetadata, TaskStatus
from factorial.tools import (
    FunctionTool,
    deferred_result,
    deferred_tool,
    forking_tool,
    function_tool,
)
from factorial.worker import AgentWorkerConfig

__all__ = [
    "Agent",
    "AgentContext",
    "AgentEvent",
    "AgentNotRegisteredError",
    "AgentRunError",
    "AgentWorkerConfig",
    "BaseAgent",
    "Batch",
    "BatchMetadata",
    "BatchNotFoundError",
    "EventPublisher",
    "EventStreamConfig",
    "EventStreamError",
    "EventsExpiredError",
    "ExecutionContext",
    "FactorialError",
    "FunctionTool",
    "HookSignatureError",
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
    "RunCompletion",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskMetadata",
    "TaskNotFoundError",
    "TaskStateError",
    "TaskStatus",
    "TemporalUnavailableError",
    "ToolDefinitionError",
    "TurnCompletion",
    "UserError",
    "deferred_result",
    "deferred_tool",
    "forking_tool",
    "function_tool",
]
