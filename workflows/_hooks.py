"""A task's lifecycle hooks outside a turn (``on_run_end`` on failure, ``on_run_cancelled``).

Each runs as one ``run_hook`` activity, and only if the agent defines it. A hook's failure is
logged and never changes how the task ended.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from factorial._wire import RUN_HOOK_ACTIVITY, HookInput, OutsideHook, TaskInput

_HOOK_TIMEOUT = timedelta(seconds=60)


async def run_hook(
    inp: TaskInput, context: dict[str, Any], hook: OutsideHook, error: str | None = None
) -> None:
    """Run ``hook`` of the task ``inp`` on its ``context``; ``error`` is how it failed."""
    if inp.hooks is not None and hook not in inp.hooks:
        return  # the agent has none: no activity
    try:
        await workflow.execute_activity(
            RUN_HOOK_ACTIVITY,
            HookInput(
                hook=hook,
                task_id=inp.task_id,
                owner_id=inp.owner_id,
                agent_name=inp.agent_name,
                context=context,
                error=error,
                batch_id=inp.batch_id,
                parent_task_id=inp.parent_task_id,
            ),
            start_to_close_timeout=_HOOK_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=hook,
        )
    except ActivityError as err:
        workflow.logger.warning("hook %s of task %s failed: %s", hook, inp.task_id, err)
