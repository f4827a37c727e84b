"""Subscriber processes for the many-subscribers test.

``python -m tests.integration.subscriber_app ADDRESS OWNER BATCH_ID OUT_DIR COUNT`` opens
``COUNT`` independent subscriptions (each its own Orchestrator, so its own Temporal client and
its own long-poll) to ``OWNER``'s stream from offset 0. Each writes the events it receives to
``OUT_DIR/<pid>-<k>.jsonl`` until it has seen ``batch_completed`` for ``BATCH_ID``; a
subscription that fails writes ``{"error": ...}`` as its last line. The process exits 0 only
if every subscription ended on the batch's completion.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from factorial import Orchestrator

TIMEOUT = 240.0


async def subscribe(address: str, owner: str, batch_id: str, out: Path) -> bool:
    orchestrator = Orchestrator(temporal_address=address)
    with out.open("w") as f:
        try:
            async with asyncio.timeout(TIMEOUT):
                async for event in orchestrator.subscribe_to_updates(owner, from_offset=0):
                    keep = {
                        k: event.get(k) for k in ("offset", "event_type", "task_id", "batch_id")
                    }
                    f.write(json.dumps(keep) + "\n")
                    if event["event_type"] == "batch_completed" and event["batch_id"] == batch_id:
                        return True
        except BaseException as err:  # noqa: BLE001 - reported to the test through the file
            f.write(json.dumps({"error": repr(err)}) + "\n")
        finally:
            await orchestrator.close()
    return False


async def main(address: str, owner: str, batch_id: str, out_dir: str, count: int) -> int:
    outs = [Path(out_dir) / f"{os.getpid()}-{k}.jsonl" for k in range(count)]
    done = await asyncio.gather(*(subscribe(address, owner, batch_id, out) for out in outs))
    return 0 if all(done) else 1


if __name__ == "__main__":
    address, owner, batch_id, out_dir, count = sys.argv[1:6]
    code = asyncio.run(main(address, owner, batch_id, out_dir, int(count)))
    sys.stdout.flush()
    os._exit(code)  # skip interpreter finalization (temporalio/sdk-python#300)
