"""Worker wiring: which workflows and activities run on which task queues.

Each agent gets its own task queue (``factorial-agent-{name}``) for its task workflows and
turns, so it scales on its own; every worker process also serves the shared
``factorial-batches`` queue (batch workflows) and ``factorial-events`` queue (the owners'
event streams). This is the one library module that imports both ``factorial.workflows``
and ``factorial.activities``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from factorial import _tracing
from factorial._ids import agent_task_queue_name
from factorial._logging import install_turn_failure_log
from factorial._sandbox import SandboxedRunner
from factorial._wire import BATCH_TASK_QUEUE, EVENTS_TASK_QUEUE
from factorial.activities.cancelling import cancel_workflows
from factorial.activities.publishing import StreamActivities
from factorial.activities.turn import AgentActivities
from factorial.agent import BaseAgent
from factorial.events import EventStreamConfig
from factorial.models import ModelClients
from factorial.worker import AgentWorkerConfig


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
    out of the sandbox too. The sandbox is the SDK's, minus one detour (``factorial._sandbox``).
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    return SandboxedRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "pydantic",
            "pydantic_core",
            "openai",
            "httpx",
            "docstring_parser",
            # Tracing's workflow interceptor keeps OpenTelemetry's context in the sandbox.
            "opentelemetry",
        )
    )


def build_workers(
    client: Client,
    runners: Mapping[str, tuple[BaseAgent[Any], AgentWorkerConfig]],
    clients: ModelClients,
    stream_config: EventStreamConfig | None = None,
    sandboxed: bool = True,
    tracing: bool = False,
) -> list[Worker]:
    """One worker per agent task queue, one for batches and one for the owners' streams.

    With ``tracing``, the workers get Temporal's tracing interceptor unless the client
    already has it (an Orchestrator's own client does; an injected one may not).
    """
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
    interceptors = worker_interceptors(client) if tracing else []
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
            interceptors=interceptors,
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
            activities=[publish, cancel_workflows],
            workflow_runner=runner,
            interceptors=interceptors,
            max_concurrent_workflow_tasks=50,
        )
    )
    workers.append(
        Worker(
            client,
            task_queue=EVENTS_TASK_QUEUE,
            workflows=[OwnerEventsWorkflow],
            workflow_runner=runner,
            interceptors=interceptors,
        )
    )
    return workers


def worker_interceptors(client: Client) -> list[Interceptor]:
    """Temporal's tracing interceptor, unless the client already passes it to its workers."""
    if any(_tracing.is_tracing_interceptor(i) for i in client.config()["interceptors"]):
        return []
    interceptor: Interceptor = _tracing.interceptor()
    return [interceptor]
