"""The README's Python blocks run as printed, against the session's Temporal server."""

from __future__ import annotations

import contextlib
import io
import re
import threading
from pathlib import Path

import pytest

from factorial.devserver import DevServer

README = Path(__file__).resolve().parents[2] / "README.md"
#: Each ``### heading`` of the README with the Python block under it (one block a heading).
BLOCKS = dict(
    re.findall(r"^### (.+?)\n(?:(?!^### ).)*?```python\n(.*?)```", README.read_text(), re.M | re.S)
)
EXPECTED = {  # a line each block must print, by the heading it is under
    "One task: tools, events, result": "Sunny in Lisbon.",
    "A batch with progress": "completed",
    "Sub-agents": '<sub_task_result sub_task_id="',
    "A deferred tool (human in the loop) and steering": "Heard: Pay in euros.",
    "Cancellation": "cancelled",
    "Streaming completions": "streamed: Durable answers, streamed word by word.",
    "Fallback models and custom progress": "model: secondary",
    "Idempotent enqueue and resuming a task": "You said: A table for two. | Make it three.",
    "Budgets across a tree of agents": "failed BudgetExceeded: used ",
    "Join policies and batch failure policy": "failed 1 task failed, more than max_failed=0 2",
}


def test_every_block_is_checked() -> None:
    python_blocks = README.read_text().count("```python\n")
    assert len(BLOCKS) == python_blocks, "a heading with two Python blocks under it"
    assert set(BLOCKS) == set(EXPECTED)


@pytest.mark.parametrize("heading", list(EXPECTED))
def test_readme_block_runs(
    heading: str, temporal_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_server.address)
    out = io.StringIO()
    errors: list[BaseException] = []

    def run() -> None:  # its own thread, so the block's asyncio.run() gets a fresh loop
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(BLOCKS[heading], f"README.md, {heading}", "exec"), {})
        except BaseException as err:  # noqa: BLE001 - re-raised in the test below
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=90)
    assert not thread.is_alive(), f"the README block under {heading!r} did not finish"
    if errors:
        raise errors[0]
    assert EXPECTED[heading] in out.getvalue(), out.getvalue()
