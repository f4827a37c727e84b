"""Worker wiring: which workflows and activities run on which task queues.

Each agent gets its own task queue (``factorial-agent-{name}``) for its task workflows and
turns, so it scales on its own; every worker process also serves the shared
``factorial-batches`` queue (batch workflows) and ``factorial-events`` queue (the owners'
event streams).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from factorial._ids import agent_task_queue_name
from factorial._logging import install_turn_failure_log
from factorial._wire import (
    BATCH_TASK_QUEUE,
    DEFAULT_TURN_EXECUTION,
    EVENTS_TASK_QUEUE,
    TurnExecution,
    TurnPolicy,
)
from factorial.activities.cancelling import cancel_and_wait, cancel_workflows
from factorial.activities.publishing import StreamActivities
from factorial.activities.turn import AgentActivities
from factorial.agent import BaseAgent
from factorial.events import EventStreamConfig
from factorial.models import ModelClients

#: The public names; the rest (``tools_by_name``, ``build_workers``, ...) serve Factorial itself.
__all__ = [
    "AgentWorkerConfig",
]


class AgentWorkerConfig(BaseModel):
    """How an agent's tasks run.

    Attributes:
        turn_execution: How turns run: ``"activity"`` as regular heartbeated activities,
            ``"local"`` as local activities (one server round trip per turn instead of two;
            cancellation, queries and steering reach a running local turn only when it ends
            or every 8 s), ``"auto"`` local while the previous turn took under 2 s, else
            regular (see ``factorial.workflows._turn_mode``).
        max_concurrent_turns: Turn activities (regular and local) one worker process runs
            at once.
        max_concurrent_tasks: Task workflow activations one worker process runs at once.
        max_retries: Retries of a failed turn (attempts = max_retries + 1).
        initial_backoff: Seconds before the first retry.
        backoff_coefficient: Multiplier of the wait between retries.
        max_backoff: Longest wait between retries, in seconds.
        turn_timeout: Seconds one turn (model call plus tools) may take.
        heartbeat_timeout: Seconds without a heartbeat before a turn counts as lost
            (a killed worker's turn is retried elsewhere after this).
        continue_as_new_bytes: A task continues as new (same id, fresh history) at a turn
            boundary once its history is this large; Temporal's hard limit is 50 MiB.
        max_cached_workflows: Task workflows one worker process keeps in memory between
            workflow tasks; more running tasks than this are replayed from history each
            time (a batch runs at most ``Orchestrator(max_running_tasks=200)`` at once).
        task_queue: Overrides the agent's task queue name.
    """

    turn_execution: TurnExecution = DEFAULT_TURN_EXECUTION
    max_concurrent_turns: int = Field(default=100, ge=1)
    max_concurrent_tasks: int = Field(default=200, ge=1)
    max_retries: int = Field(default=3, ge=0)
    initial_backoff: float = Field(default=1.0, gt=0)
    backoff_coefficient: float = Field(default=2.0, ge=1)
    max_backoff: float = Field(default=60.0, gt=0)
    turn_timeout: float = Field(default=300.0, gt=0)
    heartbeat_timeout: float = Field(default=30.0, gt=0)
    continue_as_new_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=40 * 1024 * 1024)
    max_cached_workflows: int = Field(default=1000, ge=0)
    task_queue: str | None = None

    def turn_policy(self) -> TurnPolicy:
        """The part of the config the task workflow needs."""
        return TurnPolicy(
            turn_execution=self.turn_execution,
            max_retries=self.max_retries,
            initial_backoff=self.initial_backoff,
            backoff_coefficient=self.backoff_coefficient,
            max_backoff=self.max_backoff,
            turn_timeout=self.turn_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            continue_as_new_bytes=self.continue_as_new_bytes,
        )


def agent_task_queue(agent_name: str, config: AgentWorkerConfig | None = None) -> str:
    """The task queue of an agent's workflows and turns."""
    if config is not None and config.task_queue:
        return config.task_queue
    return agent_task_queue_name(agent_name)


def workflow_runner(sandboxed: bool = True) -> WorkflowRunner:
    """The workflow runner: the SDK's sandbox, or none (``Orchestrator(sandboxed_workflows=)``).

    The sandbox checks every workflow module for non-deterministic calls (``datetime.now()``,
    I/O, threads) and imports it afresh for each workflow run. Only libraries are passed
    through, imported once; workflow modules pass Factorial's library modules (wire models,
    events) through themselves, with ``workflow.unsafe.imports_passed_through()``. The package
    ``factorial`` is not passed through as a whole: that would take ``factorial.workflows``
    out of the sandbox too.
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "pydantic",
            "pydantic_core",
            "openai",
            "httpx",
            "docstring_parser",
        )
    )


def build_workers(
    client: Client,
    runners: Mapping[str, tuple[BaseAgent[Any], AgentWorkerConfig]],
    clients: ModelClients,
    stream_config: EventStreamConfig | None = None,
    sandboxed: bool = True,
) -> list[Worker]:
    """One worker per agent task queue, one for batches and one for the owners' streams."""
    from factorial.workflows import (
        AgentTaskWorkflow,
        BatchWorkflow,
        LegacyBatchWorkflow,
        OwnerEventsWorkflow,
    )

    install_turn_failure_log()
    agents = {name: agent for name, (agent, _) in runners.items()}
    routes = {
        name: (agent_task_queue(name, config), config.turn_policy())
        for name, (_, config) in runners.items()
    }
    activities = AgentActivities(agents, clients, routes, stream_config)
    publish = StreamActivities(stream_config or EventStreamConfig()).publish_events
    runner = workflow_runner(sandboxed)
    workers = [
        Worker(
            client,
            task_queue=agent_task_queue(name, config),
            workflows=[AgentTaskWorkflow],
            activities=[activities.run_turn, activities.run_hook, publish],
            max_concurrent_activities=config.max_concurrent_turns,
            max_concurrent_local_activities=config.max_concurrent_turns,
            max_concurrent_workflow_tasks=config.max_concurrent_tasks,
            max_cached_workflows=config.max_cached_workflows,
            workflow_runner=runner,
            # Deliver cancellation to a running turn within about a second.
            default_heartbeat_throttle_interval=timedelta(seconds=1),
            max_heartbeat_throttle_interval=timedelta(seconds=2),
            graceful_shutdown_timeout=timedelta(seconds=5),
            # The SDK's default, spelled out: a killed worker's cached workflows move to
            # another within 10 s. At 3 s a busy worker missed it (0.1 workflow-task
            # timeouts a task at W(1000, 3) in local mode), and each one cost a full replay.
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=10),
        )
        for name, (_, config) in runners.items()
    ]
    workers.append(
        Worker(
            client,
            task_queue=BATCH_TASK_QUEUE,
            workflows=[BatchWorkflow, LegacyBatchWorkflow],
            activities=[publish, cancel_workflows, cancel_and_wait],
            workflow_runner=runner,
            max_concurrent_workflow_tasks=50,
        )
    )
    workers.append(
        Worker(
            client,
            task_queue=EVENTS_TASK_QUEUE,
            workflows=[OwnerEventsWorkflow],
            workflow_runner=runner,
        )
    )
    return workers
