"""A workflow that reads the wall clock: what the sandbox must catch (see test_sandbox)."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow


@workflow.defn(name="ClockReadingWorkflow")
class ClockReadingWorkflow:
    """Non-deterministic on purpose: ``datetime.now()`` instead of ``workflow.now()``."""

    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()
