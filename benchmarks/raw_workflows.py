"""The raw Temporal baselines of ``benchmarks.batch_10k``: the same shape with trivial turns.

A module of its own, small like a user's workflow module, because the workflow sandbox
imports it afresh for every workflow run, as it does ``factorial.workflows``: the raw
worker runs the sandbox with its default pass-through list.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

RAW_WORKFLOW = "RawTurns"
RAW_LOCAL_WORKFLOW = "RawLocalTurns"
RAW_TREE_WORKFLOW = "RawTree"
RAW_ACTIVITY = "raw_turn"

_raw_turns_run = 0


@activity.defn(name=RAW_ACTIVITY)
async def raw_turn(turn: int) -> None:
    """A trivial turn: does nothing but return."""
    global _raw_turns_run
    _raw_turns_run += 1


@workflow.defn(name=RAW_WORKFLOW)
class RawTurns:
    """Runs ``turns`` trivial activities one after the other."""

    @workflow.run
    async def run(self, turns: int) -> int:
        for turn in range(turns):
            await workflow.execute_activity(
                RAW_ACTIVITY, turn, start_to_close_timeout=timedelta(seconds=60)
            )
        return turns


@workflow.defn(name=RAW_LOCAL_WORKFLOW)
class RawLocalTurns:
    """Runs ``turns`` trivial local activities one after the other."""

    @workflow.run
    async def run(self, turns: int) -> int:
        for turn in range(turns):
            await workflow.execute_local_activity(
                RAW_ACTIVITY, turn, start_to_close_timeout=timedelta(seconds=60)
            )
        return turns


@dataclass
class TreeInput:
    """A parent's children: ids ``{prefix}{first}`` to ``{prefix}{first + count - 1}``."""

    prefix: str
    first: int
    count: int
    turns: int
    #: The children's workflow type: ``RawTurns``, or ``RawLocalTurns`` for raw-tree-local.
    child: str = RAW_WORKFLOW


@workflow.defn(name=RAW_TREE_WORKFLOW)
class RawTree:
    """Runs ``count`` ``RawTurns`` children at once and waits for all of them."""

    @workflow.run
    async def run(self, inp: TreeInput) -> int:
        children = range(inp.first, inp.first + inp.count)
        await asyncio.gather(
            *(
                workflow.execute_child_workflow(inp.child, inp.turns, id=f"{inp.prefix}{i}")
                for i in children
            )
        )
        return inp.count
