"""A task's side of budgets (``factorial._budget``): its check, and its usage reports.

The task checks its budget at each turn boundary (``spent``) and, in a batch with a budget,
signals the batch its usage so far after every turn (``report_usage``): from the workflow, so
each report is recorded once in history, and absolute, so a repeat changes nothing.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from factorial._wire import TASK_USAGE_SIGNAL, TaskInput, TaskUsageReport, TokenUsage

#: Tasks with a budget check it at each turn boundary.
BUDGET_PATCH = "task-budget"


def spent(inp: TaskInput, usage: TokenUsage, turns: int) -> str | None:
    """The task's ``BudgetExceeded: ...`` error if its budget leaves no room for a turn."""
    if inp.budget is None or not workflow.patched(BUDGET_PATCH):
        return None
    return inp.budget.error(usage, turns)


async def report_usage(inp: TaskInput, usage: TokenUsage, turns: int) -> None:
    """Tell the task's batch (one with a budget) its usage so far (``task_usage``)."""
    if not inp.report_usage or inp.report_to is None or inp.index is None:
        return
    report = TaskUsageReport(index=inp.index, turns=turns, usage=usage)
    batch = workflow.get_external_workflow_handle(inp.report_to)
    try:
        await batch.signal(TASK_USAGE_SIGNAL, report)
    except Exception as err:  # noqa: BLE001 - the batch has ended; it counts us by our result
        workflow.logger.info("task %s could not report its usage: %s", inp.task_id, err)
