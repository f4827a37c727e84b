"""A task's deferred tool calls: the ones a turn left pending, and their results as they come.

A deferred tool's result arrives by the task's ``complete_deferred_tool`` update; the task
waits for each until its own timeout, and a call still without a result then gets an error
result instead, so the next turn always has an answer for every call.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from factorial._wire import CompleteToolInput, FailureType, PendingToolCall, ToolResult


class DeferredTools:
    """The deferred calls a task waits for, and the results received so far."""

    def __init__(self) -> None:
        self._pending: dict[str, PendingToolCall] = {}
        self._results: dict[str, ToolResult] = {}

    def expect(self, calls: list[PendingToolCall]) -> list[str]:
        """Start waiting for ``calls`` (the previous ones are forgotten); their ids."""
        self._pending = {call.tool_call_id: call for call in calls}
        self._results = {}
        return list(self._pending)

    def outstanding(self) -> list[str]:
        """The ids of the pending calls whose result has not arrived."""
        return [i for i in self._pending if i not in self._results]

    def validate(self, inp: CompleteToolInput) -> None:
        """Reject a result for a call that is not pending, or already has one."""
        if inp.tool_call_id not in self._pending or inp.tool_call_id in self._results:
            raise ApplicationError(
                f"no pending deferred tool call {inp.tool_call_id!r}",
                type=FailureType.UNKNOWN_TOOL_CALL,
            )

    def complete(self, inp: CompleteToolInput) -> None:
        """Record a pending call's result."""
        self._results[inp.tool_call_id] = ToolResult(
            tool_call_id=inp.tool_call_id, content=inp.result
        )

    async def wait(self, calls: list[PendingToolCall]) -> list[ToolResult]:
        """Wait for every call's result or its timeout; the results in the calls' order."""
        start = workflow.time()
        for call in sorted(calls, key=lambda c: c.timeout):
            remaining = call.timeout - (workflow.time() - start)
            if call.tool_call_id not in self._results and remaining > 0:
                try:
                    await workflow.wait_condition(
                        functools.partial(self._has_result, call.tool_call_id),
                        timeout=timedelta(seconds=remaining),
                    )
                except TimeoutError:
                    pass
            if call.tool_call_id not in self._results:
                self._results[call.tool_call_id] = ToolResult(
                    tool_call_id=call.tool_call_id,
                    content=f"Error: deferred tool {call.tool_name} timed out after "
                    f"{call.timeout:g}s without a result",
                    is_error=True,
                )
        return [self._results[call.tool_call_id] for call in calls]

    def clear(self) -> None:
        """Nothing is pending any more."""
        self._pending = {}

    def _has_result(self, tool_call_id: str) -> bool:
        return tool_call_id in self._results
