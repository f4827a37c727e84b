"""Every module imports on its own, in a fresh interpreter: no import circle hides behind
another module having been imported first, and no user module shadows ours."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PACKAGES = ("factorial", "factorial.workflows", "factorial.activities")


def all_modules() -> list[str]:
    """Every module of the installed package, ``factorial.workflows`` and ``.activities`` too."""
    modules: list[str] = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(name)
        modules += [m.name for m in pkgutil.iter_modules(package.__path__, f"{name}.")]
    return sorted(set(modules))


def _import_alone(module: str, cwd: Path) -> str | None:
    """The last line of the error of ``import module`` in a fresh interpreter, or None."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def test_every_module_imports_alone(tmp_path: Path) -> None:
    modules = all_modules()
    assert {"factorial.workflows.batch", "factorial.activities.turn"} <= set(modules)
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = pool.map(lambda m: _import_alone(m, tmp_path), modules)
        errors = dict(zip(modules, found, strict=True))
    assert {m: e for m, e in errors.items() if e} == {}


@pytest.mark.parametrize("name", ["workflows", "activities"])
def test_a_user_module_of_the_same_name_does_not_shadow_ours(tmp_path: Path, name: str) -> None:
    """Temporal's project templates have a ``workflows.py`` and an ``activities.py``."""
    (tmp_path / f"{name}.py").write_text("raise ImportError('the user module was imported')\n")
    for module in (
        "factorial.orchestrator",
        "factorial.worker",
        "factorial._workers",
        f"factorial.{name}",
    ):
        assert _import_alone(module, tmp_path) is None, module


def _run_clean(code: str) -> None:
    """Run ``code`` in a fresh interpreter; it must succeed."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_workflow_module_does_not_load_the_client_side() -> None:
    """Importing a workflow loads the wire models and helpers, not the orchestrator or openai."""
    code = (
        "import sys, factorial.workflows.batch, factorial.workflows.agent_task;"
        "loaded = [m for m in ('factorial.orchestrator', 'factorial.worker',"
        " 'factorial._workers', 'openai', 'factorial.activities') if m in sys.modules];"
        "assert not loaded, loaded"
    )
    _run_clean(code)


def test_a_worker_loads_openai_only_for_a_model_that_uses_it() -> None:
    """The OpenAI library is about 20 MB of a worker's memory: a worker whose agents use
    their own ``Model`` subclass (a scripted one here) never imports it; the first
    OpenAI-compatible client does."""
    code = (
        "import sys, factorial, factorial._workers, factorial.activities.turn;"
        "from factorial import Agent, AgentWorkerConfig, Orchestrator;"
        "from factorial.models import ModelClients, gpt_41_mini;"
        "from factorial.testing import ScriptedModel;"
        "Agent(name='a', instructions='x', model=ScriptedModel([]));"
        "assert 'openai' not in sys.modules, 'loaded at import';"
        "ModelClients(api_keys={'openai': 'k'}).client_for(gpt_41_mini);"
        "assert 'openai' in sys.modules"
    )
    _run_clean(code)
