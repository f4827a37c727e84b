"""Factorial on Temporal: run LLM agent tasks reliably at high concurrency.

The public API; everything else is internal. The model catalog lives in ``factorial.models``
and the scripted test model in ``factorial.testing``.

Names load on first use (``__getattr__``): importing one module of the package, such as a
workflow inside the sandbox, loads only what that module needs, not the orchestrator, the
worker and ``openai``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from factorial._budget import Budget
    from factorial._custom_progress import publish_progress
    from factorial._policies import FailurePolicy, Quorum
    from factorial._usage import TokenUsage
    from factorial.agent import Agent, BaseAgent, RunCompletion, TurnCompletion
    from factorial.context import AgentContext, ExecutionContext
    from factorial.errors import (
        AgentNotRegisteredError,
        AgentRunError,
        BatchNotFoundError,
        BudgetExceeded,
        EventsExpiredError,
        EventStreamError,
        FactorialError,
        HookSignatureError,
        IdempotencyConflictError,
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
    from factorial.models import Model, ModelSettings, fallback_models
    from factorial.orchestrator import Orchestrator
    from factorial.task import (
        Batch,
        BatchInfo,
        BatchMetadata,
        Task,
        TaskInfo,
        TaskMetadata,
        TaskResult,
        TaskStatus,
    )
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
    "fallback_models",
    "forking_tool",
    "function_tool",
    "publish_progress",
]

#: Where each public name is defined.
_DEFINED_IN: dict[str, tuple[str, ...]] = {
    "factorial._custom_progress": ("publish_progress",),
    "factorial._budget": ("Budget",),
    "factorial._policies": ("FailurePolicy", "Quorum"),
    "factorial._usage": ("TokenUsage",),
    "factorial.agent": ("Agent", "BaseAgent", "RunCompletion", "TurnCompletion"),
    "factorial.context": ("AgentContext", "ExecutionContext"),
    "factorial.errors": (
        "AgentNotRegisteredError",
        "AgentRunError",
        "BatchNotFoundError",
        "BudgetExceeded",
        "EventsExpiredError",
        "EventStreamError",
        "FactorialError",
        "HookSignatureError",
        "IdempotencyConflictError",
        "InlineRunError",
        "InvalidIdError",
        "InvalidPayloadError",
        "MaxTurnsExceeded",
        "ModelBehaviorError",
        "ModelHTTPError",
        "NotFoundError",
        "PayloadTooLargeError",
        "TaskCancelledError",
        "TaskFailedError",
        "TaskNotFoundError",
        "TaskStateError",
        "TemporalUnavailableError",
        "ToolDefinitionError",
        "UserError",
    ),
    "factorial.events": ("AgentEvent", "EventPublisher", "EventStreamConfig"),
    "factorial.models": ("Model", "ModelSettings", "fallback_models"),
    "factorial.orchestrator": ("Orchestrator",),
    "factorial.task": (
        "Batch",
        "BatchInfo",
        "BatchMetadata",
        "Task",
        "TaskInfo",
        "TaskMetadata",
        "TaskResult",
        "TaskStatus",
    ),
    "factorial.tools": (
        "FunctionTool",
        "deferred_result",
        "deferred_tool",
        "forking_tool",
        "function_tool",
    ),
    "factorial.worker": ("AgentWorkerConfig",),
}
_MODULE_OF = {name: module for module, names in _DEFINED_IN.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'factorial' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
