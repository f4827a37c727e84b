"""A task's turns as activities: each one local or regular (``_turn_mode``), with its retries.

``Turns`` keeps what the choice between the two needs from one turn to the next: how long
the previous turn ran, and the bytes of local turn results not yet in history (which
continue-as-new counts too). A turn whose retries ran out, or whose error is not retryable,
raises ``TurnFailed`` with its error as one line.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeoutError,
)

from factorial.workflows._turn_mode import (
    BOUNDARY,
    BOUNDARY_SECONDS,
    LOCAL_RETRY_THRESHOLD,
    UnrecordedTurns,
    next_turn_is_local,
)

with workflow.unsafe.imports_passed_through():
    from factorial._wire import RUN_TURN_ACTIVITY, TaskInput, ToolResult, TurnInput, TurnOutput


class TurnFailed(Exception):
    """A turn failed for good (its retries ran out, or its error is not retryable)."""


class Turns:
    """Runs one task's turns, each as a local or a regular activity."""

    def __init__(self, inp: TaskInput) -> None:
        self._inp = inp
        self._last_turn_seconds: float | None = None
        self._unrecorded = UnrecordedTurns()

    async def run(self, context: dict[str, Any], resumed: list[ToolResult]) -> TurnOutput:
        """Run the task's next turn on ``context``; ``resumed`` are deferred tools' results.

        Raises:
            TurnFailed: The turn failed for good.
        """
        policy = self._inp.policy
        turn = int(context.get("turn", 0))
        inp = TurnInput(
            task_id=self._inp.task_id,
            owner_id=self._inp.owner_id,
            agent_name=self._inp.agent_name,
            context=context,
            batch_id=self._inp.batch_id,
            parent_task_id=self._inp.parent_task_id,
            report_to=self._inp.report_to,
            index=self._inp.index,
            report_delay=self._inp.turn_report_delay,
            resumed_results=resumed,
        )
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=policy.initial_backoff),
            backoff_coefficient=policy.backoff_coefficient,
            maximum_interval=timedelta(seconds=policy.max_backoff),
            maximum_attempts=policy.max_retries + 1,
        )
        options: dict[str, Any] = {
            "result_type": TurnOutput,
            "start_to_close_timeout": timedelta(seconds=policy.turn_timeout),
            "retry_policy": retry,
            "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "summary": f"{self._inp.agent_name} turn {turn + 1}",
        }
        local = next_turn_is_local(policy.turn_execution, self._last_turn_seconds)
        out: TurnOutput
        try:
            if local:
                out = await workflow.execute_local_activity(
                    RUN_TURN_ACTIVITY, inp, local_retry_threshold=LOCAL_RETRY_THRESHOLD, **options
                )
            else:
                out = await workflow.execute_activity(
                    RUN_TURN_ACTIVITY,
                    inp,
                    heartbeat_timeout=timedelta(seconds=policy.heartbeat_timeout),
                    **options,
                )
        except FailureError as err:
            # A local turn's final failure may arrive unwrapped (no ActivityError around it).
            if is_cancelled_exception(err):
                raise
            raise TurnFailed(_failure_message(err)) from None
        if out.interrupted:
            return await self._after_interruption(context, resumed)
        self._last_turn_seconds = out.seconds
        if local:
            await self._after_local_turn(out)
        return out

    async def _after_interruption(
        self, context: dict[str, Any], resumed: list[ToolResult]
    ) -> TurnOutput:
        """A local turn stopped for the task's cancel request: end the workflow task so the
        request reaches the workflow, and end the task ``cancelled``.

        The turn saw the request on the server, so it comes; should it not, the turn runs
        again.
        """
        if workflow.cancellation_reason() is None:
            await workflow.sleep(BOUNDARY)  # raises CancelledError once the request arrives
        if workflow.cancellation_reason() is not None:
            raise asyncio.CancelledError("task cancellation requested")
        return await self.run(context, resumed)

    def history_size(self) -> int:
        """The history's size, counting local turn results not recorded in it yet."""
        return self._unrecorded.history_size(workflow.info().get_current_history_size())

    async def _after_local_turn(self, out: TurnOutput) -> None:
        """End the workflow task before the next turn where needed (see ``_turn_mode``)."""
        size = workflow.info().get_current_history_size()
        self._unrecorded.add(size, out.encoded_bytes or 0)
        long_turn = (out.seconds or 0) >= BOUNDARY_SECONDS
        if _another_turn_follows(out) and (long_turn or self._unrecorded.needs_boundary(size)):
            await workflow.sleep(BOUNDARY)


def _another_turn_follows(out: TurnOutput) -> bool:
    """Whether the next turn starts right away (no end, wait for tools or children)."""
    return not (out.done or out.failure or out.pending_tool_calls or out.child_batches)


def _failure_message(err: FailureError) -> str:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}" if cause.type else cause.message
    if isinstance(cause, TemporalTimeoutError):
        return f"turn timed out ({cause.type.name.lower() if cause.type else 'timeout'})"
    return str(cause or err)
