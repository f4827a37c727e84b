"""Typed errors raised by Factorial.

Two families: *you misused it* (``UserError``, raised before any side effect) and
*the run failed* (``AgentRunError``, raised or reported while a task runs)::

    FactorialError
    ├── UserError                      configuration or call mistakes
    │   ├── AgentNotRegisteredError    agent not registered on the orchestrator
    │   ├── InvalidPayloadError        payload fails its context class validation
    │   ├── InvalidIdError             owner/task/batch id is not a valid workflow id
    │   ├── PayloadTooLargeError       payload over Temporal's payload size limit
    │   ├── ToolDefinitionError        a tool cannot be turned into a schema
    │   ├── HookSignatureError         a lifecycle hook has the wrong signature
    │   ├── InlineRunError             run_inline met a deferred or forking tool
    │   └── IdempotencyConflictError   an idempotency key already names another run
    ├── NotFoundError
    │   ├── TaskNotFoundError
    │   └── BatchNotFoundError
    ├── TaskStateError                 the task cannot take this call in its state
    ├── TemporalUnavailableError       no Temporal server answered (in time)
    ├── EventStreamError               a subscription to an owner's events ended abnormally
    │   └── EventsExpiredError         the offset asked for is no longer retained
    └── AgentRunError                  a run failed
        ├── MaxTurnsExceeded
        ├── ModelHTTPError             provider answered with an HTTP error
        ├── ModelBehaviorError         provider answered with something unusable
        ├── TaskFailedError            ``Task.result()`` of a failed task
        │   └── BudgetExceeded         ... one its budget stopped (``factorial.Budget``)
        └── TaskCancelledError         ``Task.result()`` of a cancelled task
"""

from __future__ import annotations


class FactorialError(Exception):
    """Root of every error Factorial raises."""


class UserError(FactorialError):
    """The library was called or configured incorrectly."""


class AgentNotRegisteredError(UserError):
    """The agent is not registered on this orchestrator."""


class InvalidPayloadError(UserError):
    """A payload does not validate against the agent's context class."""


class InvalidIdError(UserError):
    """An id cannot be used as (part of) a Temporal workflow id."""


class PayloadTooLargeError(UserError):
    """A payload is larger than Temporal accepts in one message."""


class ToolDefinitionError(UserError):
    """A tool function cannot be described to a model."""


class HookSignatureError(UserError):
    """A lifecycle hook does not accept the arguments Factorial passes."""


class InlineRunError(UserError):
    """``run_inline`` cannot run this agent (deferred or forking tools)."""


class IdempotencyConflictError(UserError):
    """An idempotency key already names a run of another agent, payload, budget or policy.

    Attributes:
        existing_id: The id of the task or batch the key names.
    """

    def __init__(self, message: str, existing_id: str) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class NotFoundError(FactorialError):
    """Something looked up by id does not exist."""


class TaskNotFoundError(NotFoundError):
    """No task with this id exists."""


class BatchNotFoundError(NotFoundError):
    """No batch with this id exists."""


class TaskStateError(FactorialError):
    """The task exists but cannot take this call in its current state."""


class TemporalUnavailableError(FactorialError):
    """No Temporal server answered at the configured address (within the time allowed)."""


class EventStreamError(FactorialError):
    """A subscription to an owner's event stream cannot go on (e.g. the stream was terminated)."""


class EventsExpiredError(EventStreamError):
    """Events from the offset asked for are no longer retained; none was skipped silently.

    Attributes:
        owner_id: Whose stream.
        requested_offset: The first offset the subscriber needed.
        oldest_offset: The oldest offset the stream still has; resume from it to accept the gap.
    """

    def __init__(self, owner_id: str, requested_offset: int, oldest_offset: int) -> None:
        super().__init__(
            f"events {requested_offset}-{oldest_offset - 1} of owner {owner_id!r} are no longer "
            f"retained; the oldest still available is {oldest_offset}"
        )
        self.owner_id = owner_id
        self.requested_offset = requested_offset
        self.oldest_offset = oldest_offset


class AgentRunError(FactorialError):
    """An agent run failed."""


class MaxTurnsExceeded(AgentRunError):
    """The agent reached ``max_turns`` without producing a final output."""


class ModelHTTPError(AgentRunError):
    """The model provider answered with an HTTP error status.

    Attributes:
        status_code: The HTTP status code.
        retry_after: Seconds the provider asked us to wait, if it said.
        retryable: Whether trying again may succeed (408, 409, 429, 5xx).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after
        self.retryable = is_retryable_status(status_code) if retryable is None else retryable


class ModelBehaviorError(AgentRunError):
    """The model answered with something Factorial cannot use."""


class TaskFailedError(AgentRunError):
    """The task ended ``failed``; ``error`` is its failure message."""

    def __init__(self, task_id: str, error: str | None) -> None:
        super().__init__(f"task {task_id} failed: {error}")
        self.task_id = task_id
        self.error = error


class BudgetExceeded(TaskFailedError):
    """The task's budget (``factorial.Budget``) was spent before it finished.

    Its ``error`` starts with ``BudgetExceeded:`` and says which limit was reached; a batch
    stopped by its budget ends ``failed`` with such an error (``BatchMetadata.error``).
    """


class TaskCancelledError(AgentRunError):
    """The task ended ``cancelled``."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} was cancelled")
        self.task_id = task_id


RETRYABLE_STATUS_CODES = frozenset({408, 409, 429})


def is_retryable_status(status_code: int) -> bool:
    """Return True for HTTP statuses worth retrying: 408, 409, 429 and every 5xx."""
    return status_code in RETRYABLE_STATUS_CODES or status_code >= 500
