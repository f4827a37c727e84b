"""Temporal workflow definitions. Deterministic code only: no I/O, clocks or randomness.

The worker's sandbox imports a workflow's module afresh for every workflow run, so this
package imports its modules only when one of its names is asked for: a task workflow's run
loads ``factorial.workflows.agent_task`` and what it needs, not the batch and stream workflows too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from factorial.workflows.agent_task import AgentTaskWorkflow
    from factorial.workflows.batch import BatchWorkflow
    from factorial.workflows.legacy_batch import LegacyBatchWorkflow
    from factorial.workflows.owner_events import OwnerEventsWorkflow

__all__ = ["AgentTaskWorkflow", "BatchWorkflow", "LegacyBatchWorkflow", "OwnerEventsWorkflow"]

_MODULES = {
    "AgentTaskWorkflow": "factorial.workflows.agent_task",
    "BatchWorkflow": "factorial.workflows.batch",
    "LegacyBatchWorkflow": "factorial.workflows.legacy_batch",
    "OwnerEventsWorkflow": "factorial.workflows.owner_events",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'workflows' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
