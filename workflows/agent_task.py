"""``AgentTaskWorkflow``: one agent task, one workflow; one turn, one activity.

The loop: apply steering, run the ``run_turn`` activity, then finish, or wait for deferred
tool results, or run the next turn. The workflow owns the state between turns (context,
status, pending deferred calls, steering) and answers the ``snapshot`` query. Lifecycle
events that must arrive exactly once (``agent_output``, ``run_completed``, ``run_failed``,
``run_cancelled``, steering, pending-tool and pending-child events) are sent from here as
external signals to the owner's stream workflow: Temporal records each signal once in
history, so a crashed worker can never send one twice. ``run_started`` and the per-turn
progress events come from the turn activity, in order, as they happen.

The pieces the workflow owns: running a turn as a local or regular activity
(``_turn``), the deferred tool calls it waits for (``_deferred``), the lifecycle hooks run
outside a turn (``_hooks``) and a forking tool's sub-agent batches (``_children``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError, is_cancelled_exception

from factorial.workflows._children import (
    PENDING_CHILDREN_EVENT_PATCH,
    child_task_ids,
    run_child_batch,
    sub_task_results_message,
)
from factorial.workflows._deferred import DeferredTools
from factorial.workflows._emitter import StreamEmitter
from factorial.workflows._hooks import run_hook
from factorial.workflows._task_budget import report_usage, spent
from factorial.workflows._turn import TurnFailed, Turns

with workflow.unsafe.imports_passed_through():
    from factorial import events as ev
    from factorial._metrics import record_task_end
    from factorial._wire import (
        COMPLETE_TOOL_UPDATE,
        SA_STATUS,
        SNAPSHOT_QUERY,
        STEER_UPDATE,
        TASK_WORKFLOW,
        ChildBatchRequest,
        CompleteToolInput,
        FailureType,
        PendingToolCall,
        SteerInput,
        TaskInput,
        TaskSnapshot,
        TokenUsage,
        ToolResult,
        TurnOutput,
        steering_problem,
    )

_STATUS_KEY = SearchAttributeKey.for_keyword(SA_STATUS)
#: A failed task's failure carries its context too, for ``resume_task``.
_FAILURE_CONTEXT_PATCH = "failure-carries-context"


@workflow.defn(name=TASK_WORKFLOW)
class AgentTaskWorkflow:
    """Runs one agent task to a terminal state: completed, failed or cancelled."""

    @workflow.init
    def __init__(self, inp: TaskInput) -> None:
        self._inp = inp
        self._context: dict[str, Any] = dict(inp.payload)
        self._status = "active" if inp.started else "queued"
        self._output: Any = None
        self._error: str | None = None
        self._steering: list[list[dict[str, Any]]] = list(inp.steering)
        self._deferred = DeferredTools()
        self._turns = Turns(inp)
        # Tokens of its turns and of its sub-agents' ended batches (carried across
        # continue-as-new).
        self._usage = inp.usage or TokenUsage()
        self._events = StreamEmitter(
            inp.owner_id,
            {"task_id": inp.task_id, "owner_id": inp.owner_id, "agent_name": inp.agent_name},
        )

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskSnapshot:
        # ``run_started`` comes from the first turn's activity, ahead of its other events.
        if not inp.started:  # not a continue-as-new of a running task
            workflow.logger.info("task %s (agent %s) started", inp.task_id, inp.agent_name)
        try:
            resumed: list[ToolResult] = []
            while True:
                self._apply_steering()
                out = await self._run_turn(resumed)
                self._context = out.context
                if out.usage is not None:
                    self._usage += out.usage
                await report_usage(self._inp, self._usage, int(self._context.get("turn", 0)))
                _raise_if_cancel_requested()
                if out.failure:
                    await self._finish_failed(out.failure)
                    raise self._failure(out.failure)
                if out.done:
                    return await self._finish_completed(out.output)
                await self._check_budget()
                if out.child_batches:
                    await self._run_children(out.child_batches)
                    _raise_if_cancel_requested()
                    await self._check_budget()
                resumed = await self._wait_for_tools(out.pending_tool_calls)
                _raise_if_cancel_requested()
                if not resumed and self._history_is_large():
                    await self._continue_as_new()
        except BaseException as err:
            if is_cancelled_exception(err):
                await self._finish_cancelled()
                raise
            if isinstance(err, TurnFailed):
                message = str(err)
                await self._finish_failed(message)
                raise self._failure(message) from None
            raise

    def _failure(self, message: str) -> ApplicationError:
        """The task's failure; its details carry its usage, for the batch that counts it.

        Then its context, so ``resume_task`` reads the conversation with no worker.
        """
        details: list[Any] = [self._usage.model_dump(mode="json")]
        if workflow.patched(_FAILURE_CONTEXT_PATCH):
            details.append(self._context)
        return ApplicationError(
            message, *details, type=FailureType.AGENT_RUN_FAILED, non_retryable=True
        )

    # -- queries and updates -------------------------------------------------------------

    @workflow.query(name=SNAPSHOT_QUERY)
    def snapshot(self) -> TaskSnapshot:
        """The task's current state."""
        return TaskSnapshot(
            task_id=self._inp.task_id,
            owner_id=self._inp.owner_id,
            agent_name=self._inp.agent_name,
            status=self._status,
            turn=int(self._context.get("turn", 0)),
            output=self._output,
            error=self._error,
            context=self._context,
            pending_tool_call_ids=self._deferred.outstanding(),
            batch_id=self._inp.batch_id,
            parent_task_id=self._inp.parent_task_id,
            created_at=self._inp.created_at,
            usage=self._usage,
            resumed_from=self._inp.resumed_from,
        )

    @workflow.update(name=STEER_UPDATE)
    def steer(self, inp: SteerInput) -> None:
        """Queue messages for the next turn boundary."""
        self._steering.append(inp.messages)

    @steer.validator
    def _validate_steer(self, inp: SteerInput) -> None:
        problem = steering_problem(inp.messages)
        if problem is not None:
            raise ApplicationError(problem, type=FailureType.INVALID_PAYLOAD)
        if self._is_terminal():
            raise ApplicationError(f"task is {self._status}", type=FailureType.TASK_STATE)

    @workflow.update(name=COMPLETE_TOOL_UPDATE)
    def complete_deferred_tool(self, inp: CompleteToolInput) -> bool:
        """Record a deferred tool's result; the task resumes once all are in."""
        self._deferred.complete(inp)
        return True

    @complete_deferred_tool.validator
    def _validate_complete(self, inp: CompleteToolInput) -> None:
        self._deferred.validate(inp)

    # -- the turn loop -------------------------------------------------------------------

    async def _run_turn(self, resumed: list[ToolResult]) -> TurnOutput:
        # The search attribute already says "active" (set at start): no upsert per turn.
        self._set_status("processing", upsert=False)
        return await self._turns.run(self._context, resumed)

    async def _wait_for_tools(self, calls: list[PendingToolCall]) -> list[ToolResult]:
        """Wait for every deferred call's result or its timeout; add the tool messages."""
        if not calls:
            return []
        tool_call_ids = self._deferred.expect(calls)
        self._set_status("pending_tool_results")
        self._emit(ev.TASK_PENDING_TOOL_CALL_RESULTS, tool_call_ids=tool_call_ids)
        results = await self._deferred.wait(calls)
        messages = self._context.setdefault("messages", [])
        messages.extend(
            {"role": "tool", "tool_call_id": r.tool_call_id, "content": r.content} for r in results
        )
        self._deferred.clear()
        self._set_status("active")
        return results

    async def _run_children(self, requests: list[ChildBatchRequest]) -> None:
        """Run the sub-agent batches a forking tool asked for; hand back every outcome.

        Cancelling this task cancels the child batches (and through them every
        descendant); ``asyncio.gather`` waits until each has finished cancelling.
        """
        self._set_status("pending_child_tasks")
        if workflow.patched(PENDING_CHILDREN_EVENT_PATCH):
            self._emit(
                ev.TASK_PENDING_CHILD_TASK_RESULTS,
                child_task_ids=[task_id for r in requests for task_id in child_task_ids(r)],
                batch_ids=[r.batch_id for r in requests],
            )
        budget = self._inp.budget.remaining(self._usage) if self._inp.budget else None
        outcomes = await asyncio.gather(*(run_child_batch(self._inp, r, budget) for r in requests))
        results = [result for batch in outcomes for result in batch]
        for result in results:
            if result.usage is not None:
                self._usage += result.usage
        self._context.setdefault("messages", []).append(
            {"role": "user", "content": sub_task_results_message(results)}
        )
        self._set_status("active")

    async def _check_budget(self) -> None:
        """Fail with ``BudgetExceeded`` if the budget leaves no room for another turn."""
        error = spent(self._inp, self._usage, int(self._context.get("turn", 0)))
        if error is not None:
            await self._finish_failed(error)
            raise self._failure(error)

    def _apply_steering(self) -> None:
        if not self._steering:
            return
        batches, self._steering = self._steering, []
        added = [message for batch in batches for message in batch]
        self._context.setdefault("messages", []).extend(added)
        self._emit(ev.RUN_STEERING_APPLIED, message_count=len(added))

    def _history_is_large(self) -> bool:
        size = self._turns.history_size()
        suggested = workflow.info().is_continue_as_new_suggested()
        return suggested or size > self._inp.policy.continue_as_new_bytes

    async def _continue_as_new(self) -> None:
        await self._drain_events()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self._inp.model_copy(
                update={
                    "payload": self._context,
                    "started": True,
                    "steering": self._steering,
                    "usage": self._usage,
                }
            )
        )

    # -- endings -------------------------------------------------------------------------

    async def _finish_completed(self, output: Any) -> TaskSnapshot:
        self._output = output
        self._set_status("completed")
        turn = int(self._context.get("turn", 0))
        self._log_end("completed", f"{turn} turn{'' if turn == 1 else 's'}")
        self._emit_end("completed", turn=turn, output=output)
        await self._close()
        return self.snapshot()

    async def _finish_failed(self, message: str) -> None:
        self._error = message
        self._set_status("failed")
        self._log_end("failed", " ".join(message.split())[:300])
        await run_hook(self._inp, self._context, "on_run_end", error=message)
        self._emit_end("failed", error=message)
        await self._close()

    async def _finish_cancelled(self) -> None:
        self._set_status("cancelled")
        self._log_end("cancelled", f"at turn {int(self._context.get('turn', 0))}")
        await run_hook(self._inp, self._context, "on_run_cancelled")
        self._emit_end("cancelled")
        await self._close()

    async def _close(self) -> None:
        """Refuse steering that can no longer apply, flush events, let handlers finish."""
        record_task_end(self._inp.agent_name, self._status)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._steering:
            self._emit(
                ev.RUN_STEERING_FAILED,
                error=f"task {self._status} before the steering messages could be applied",
            )
            self._steering = []
        await self._drain_events()

    # -- status and events ---------------------------------------------------------------

    def _is_terminal(self) -> bool:
        return self._status in ("completed", "failed", "cancelled")

    def _set_status(self, status: str, *, upsert: bool = True) -> None:
        self._status = status
        turn = int(self._context.get("turn", 0))
        workflow.set_current_details(f"**{status}** · turn {turn} · agent {self._inp.agent_name}")
        if upsert and self._inp.track_status:
            workflow.upsert_search_attributes([_STATUS_KEY.value_set(status)])

    def _log_end(self, status: str, detail: str) -> None:
        """One log line per ended task (``workflow.logger`` is silent during replay)."""
        log = workflow.logger.warning if status == "failed" else workflow.logger.info
        log("task %s (agent %s) %s: %s", self._inp.task_id, self._inp.agent_name, status, detail)

    def _emit(self, event_type: str, **fields: Any) -> None:
        self._events.emit(event_type, **fields)

    def _emit_end(self, status: str, **how: Any) -> None:
        """Announce how the run ended, unless this task's batch does (see BatchWorkflow)."""
        if not self._inp.terminal_events_by_batch:
            usage = self._usage.model_dump(mode="json")
            for event_type, fields in ev.terminal_events(status, usage=usage, **how):
                self._emit(event_type, **fields)

    async def _drain_events(self) -> None:
        await self._events.drain()


def _raise_if_cancel_requested() -> None:
    """Honour a cancel request that arrived while a turn finished anyway.

    With ``WAIT_CANCELLATION_COMPLETED`` a turn that completes before its heartbeat carries
    the cancellation returns normally; the request must still end the task.
    """
    if workflow.cancellation_reason() is not None:
        raise asyncio.CancelledError("task cancellation requested")
