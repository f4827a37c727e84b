"""Temporal workflow definitions. Deterministic code only: no I/O, clocks or randomness."""

from workflows.agent_task import AgentTaskWorkflow
from workflows.batch import BatchWorkflow
from workflows.legacy_batch import LegacyBatchWorkflow
from workflows.owner_events import OwnerEventsWorkflow

__all__ = ["AgentTaskWorkflow", "BatchWorkflow", "LegacyBatchWorkflow", "OwnerEventsWorkflow"]
