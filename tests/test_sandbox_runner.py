"""``factorial._sandbox``: the workers' sandbox gives the data converter the SDK's contexts.

A codec that records the serialization context of every payload it encodes or decodes sees
the same contexts, in the same order, whether a history replays on the SDK's own sandboxed
runner or on Factorial's, which looks them up without entering the sandbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from factorial._converter import DATA_CONVERTER, CompressionCodec
from factorial._sandbox import SandboxedRunner
from factorial._workers import workflow_runner
from factorial.workflows import AgentTaskWorkflow, BatchWorkflow
from tests.record_histories import HISTORIES_DIR, LOCAL_DIR, load_history

Seen = list[tuple[str, str, int]]


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """``CompressionCodec`` that notes each call's direction, context and payload count."""

    def __init__(self, seen: Seen, context: SerializationContext | None = None) -> None:
        self._seen = seen
        self._context = context
        self._inner = CompressionCodec()

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(self._seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._seen.append(("encode", _describe(self._context), len(payloads)))
        return await self._inner.encode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._seen.append(("decode", _describe(self._context), len(payloads)))
        return await self._inner.decode(payloads)


def _describe(context: Any) -> str:
    if context is None:
        return "none"
    return f"{type(context).__name__}{sorted(dataclasses.asdict(context).items())}"


async def _contexts(runner: WorkflowRunner, history_path: Path) -> Seen:
    seen: Seen = []
    converter = dataclasses.replace(DATA_CONVERTER, payload_codec=RecordingCodec(seen))
    replayer = Replayer(
        workflows=[AgentTaskWorkflow, BatchWorkflow],
        data_converter=converter,
        workflow_runner=runner,
    )
    await replayer.replay_workflow(load_history(history_path))
    return seen


@pytest.mark.parametrize(
    "history",
    [
        HISTORIES_DIR / "agent_task_basic.json",
        LOCAL_DIR / "agent_task_basic.json",
        HISTORIES_DIR / "batch_leaf.json",
    ],
    ids=lambda path: f"{path.parent.name}/{path.stem}",
)
async def test_payloads_get_the_sdk_sandbox_contexts(history: Path) -> None:
    ours = workflow_runner()
    assert isinstance(ours, SandboxedRunner)
    sdk = SandboxedWorkflowRunner(restrictions=ours.restrictions)

    expected = await _contexts(sdk, history)
    seen = await _contexts(ours, history)

    assert seen == expected
    # Not only the workflow's own context: activities' or children's payloads have theirs.
    contexts = {context for _, context, _ in seen}
    assert len(contexts - {"none"}) > 1, contexts
