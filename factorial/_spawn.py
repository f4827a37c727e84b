"""Sub-agents: what ``execution_ctx.spawn_child_tasks`` does inside a ``@forking_tool``.

The forking tool runs inside the turn activity, which must not start workflows itself (a
retried turn would start them twice). So spawning only *records* the request, with the
child task ids and batch id it returns to the tool; the task workflow starts the children
as a child ``BatchWorkflow`` once the turn has ended. Ids are derived from the task, the
turn and the tool call, so a retried turn asks for the very same children.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from factorial._progress import max_units
from factorial._wire import task_id_of
from factorial.errors import AgentNotRegisteredError, InvalidPayloadError, UserError
from factorial.task import Batch, BatchMetadata


@dataclass
class SpawnRequest:
    """Children one ``spawn_child_tasks`` call asked for."""

    batch_id: str
    agent_name: str
    max_turns: int | None
    payloads: list[dict[str, Any]]
    tool_call_id: str
    timeout: float
    #: Completed children that let the parent resume (the tool's join); None: all ended.
    join: int | None = None

    @property
    def task_ids(self) -> list[str]:
        """The children's task ids (as the batch workflow will name them)."""
        return [task_id_of(self.batch_id, i) for i in range(len(self.payloads))]


@dataclass
class Fork:
    """The forking tool call being run, and what it has spawned so far."""

    task_id: str
    owner_id: str
    slot: str
    tool_call_id: str
    timeout: float
    join: int | None = None
    requests: list[SpawnRequest] = field(default_factory=list)

    @property
    def task_ids(self) -> list[str]:
        """Every child task id spawned by this call."""
        return [task_id for request in self.requests for task_id in request.task_ids]


current_fork: contextvars.ContextVar[Fork | None] = contextvars.ContextVar(
    "factorial_fork", default=None
)


def fork_slot(turn: int, tool_call_id: str) -> str:
    """A short id-safe name for one tool call of one turn."""
    return f"t{turn}-{re.sub(r'[^A-Za-z0-9]', '', tool_call_id)[-24:] or 'call'}"


class Spawner:
    """Records spawn requests for the worker's registered agents."""

    def __init__(self, is_registered: Callable[[str], bool]) -> None:
        self._is_registered = is_registered

    async def __call__(self, agent: Any, payloads: Sequence[Any]) -> Batch:
        """Record one child batch; see ``ExecutionContext.spawn_child_tasks``."""
        fork = current_fork.get()
        if fork is None:
            raise UserError("spawn_child_tasks can only be called inside a @forking_tool")
        if not self._is_registered(agent.name):
            raise AgentNotRegisteredError(
                f"agent {agent.name!r} is not registered in this worker; register it on the "
                "orchestrator that runs the parent's worker"
            )
        if not payloads:
            raise InvalidPayloadError("spawn_child_tasks needs at least one payload")
        contexts = [agent.validate_payload(p).model_dump(mode="json") for p in payloads]
        request = SpawnRequest(
            batch_id=f"{fork.task_id}-{fork.slot}-{len(fork.requests)}",
            agent_name=agent.name,
            max_turns=agent.max_turns,
            payloads=contexts,
            tool_call_id=fork.tool_call_id,
            timeout=fork.timeout,
            join=fork.join,
        )
        fork.requests.append(request)
        return Batch(
            id=request.batch_id,
            task_ids=request.task_ids,
            remaining_task_ids=request.task_ids,
            progress=0.0,
            metadata=BatchMetadata(
                owner_id=fork.owner_id,
                created_at=datetime.now(UTC),
                total_tasks=len(contexts),
                max_progress=max_units(agent.max_turns, len(contexts)),
                status="active",
                parent_id=fork.task_id,
            ),
        )


def parse_fork_return(value: Any, spawned: list[str]) -> tuple[str | None, list[str]]:
    """Read a forking tool's return: ids, or ``(message, ids)``.

    Raises:
        ValueError: Any other shape, or ids that were not spawned by this call.
    """
    message = None
    ids = value
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], list | tuple)
    ):
        message, ids = value
    if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
        raise ValueError(
            "a forking tool must return the child task ids (list[str] or tuple[str, ...]) "
            f"or (message, ids); it returned {type(value).__name__}: {value!r:.200}"
        )
    unknown = [i for i in ids if i not in spawned]
    if unknown:
        raise ValueError(f"the forking tool returned ids it did not spawn: {unknown}")
    return message, list(ids)
