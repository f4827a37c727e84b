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
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
EXPECTED = {  # a line each block must print
    0: "Sunny in Lisbon.",
    1: "completed",
    2: '<sub_task_result sub_task_id="',
    3: "Heard: Pay in euros.",
    4: "cancelled",
}


def test_every_block_is_checked() -> None:
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(
    index: int, temporal_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_server.address)
    out = io.StringIO()
    errors: list[BaseException] = []

    def run() -> None:  # its own thread, so the block's asyncio.run() gets a fresh loop
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {})
        except BaseException as err:  # noqa: BLE001 - re-raised in the test below
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=90)
    assert not thread.is_alive(), f"README block {index} did not finish"
    if errors:
        raise errors[0]
    assert EXPECTED[index] in out.getvalue(), out.getvalue()
