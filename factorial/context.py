"""The contexts an agent sees: the persisted ``AgentContext``, the per-run ``ExecutionContext``."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from factorial.events import EventPublisher
    from factorial.task import Batch


class AgentContext(BaseModel):
    """State carried between turns and persisted by Temporal.

    Subclass it to carry your own fields; extra fields are allowed too, and both
    survive the trip through Temporal exactly.

    Attributes:
        query: The user's request; sent as the first user message when ``messages`` is empty.
        messages: The conversation so far, as OpenAI chat messages (without the system prompt).
        turn: How many turns have completed.
        output: The final output once the run has one.
        attempt: Which attempt of the current turn is running (1 on the first try).
    """

    model_config = ConfigDict(extra="allow")

    query: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    turn: int = 0
    output: Any = None
    attempt: int = 1


_current: contextvars.ContextVar[ExecutionContext] = contextvars.ContextVar("factorial_execution")


@dataclass
class ExecutionContext:
    """Facts about the running task; built per turn, never persisted.

    Attributes:
        task_id: The task (and workflow) id.
        owner_id: Who owns the task; events go to this owner's stream.
        agent_name: The running agent's name.
        retries: How many times the current turn has been retried (attempt - 1).
        iterations: The turn number being run.
        batch_id: The batch this task belongs to, if any.
        parent_task_id: The task that spawned this one, if any.
        events: Publishes events to the owner's stream.
    """

    task_id: str
    owner_id: str
    agent_name: str = ""
    retries: int = 0
    iterations: int = 0
    batch_id: str | None = None
    parent_task_id: str | None = None
    events: EventPublisher | None = None
    _spawner: Callable[[Any, list[Any]], Awaitable[Batch]] | None = field(default=None, repr=False)
    _clients: Any = field(default=None, repr=False)  # factorial.models.ModelClients

    @staticmethod
    def current() -> ExecutionContext:
        """Return the execution context of the task running in this asyncio task.

        Raises:
            LookupError: When called outside a running turn.
        """
        return _current.get()

    def _bind(self) -> contextvars.Token[ExecutionContext]:
        return _current.set(self)

    @staticmethod
    def _unbind(token: contextvars.Token[ExecutionContext]) -> None:
        _current.reset(token)

    async def spawn_child_tasks(self, agent: Any, payloads: list[Any]) -> Batch:
        """Request one child task per payload, run as a batch under this task.

        Only valid inside a ``@forking_tool``. Returns the ``Batch`` whose ``task_ids``
        the tool returns.
        """
        if self._spawner is None:
            from factorial.errors import UserError

            raise UserError("spawn_child_tasks can only be called inside a @forking_tool")
        return await self._spawner(agent, list(payloads))

    async def spawn_child_task(self, agent: Any, payload: Any) -> str:
        """Request one child task; returns its task id. Only valid inside a ``@forking_tool``."""
        batch = await self.spawn_child_tasks(agent, [payload])
        task_id: str = batch.task_ids[0]
        return task_id
