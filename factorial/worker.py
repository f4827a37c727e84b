"""How an agent's tasks run: ``AgentWorkerConfig``.

The workers themselves (which workflows and activities run on which task queues) are built
by ``factorial._workers``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from factorial._wire import DEFAULT_TURN_EXECUTION, TurnExecution, TurnPolicy

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
