"""Type-check ``factorial`` (with ``factorial.workflows`` and ``factorial.activities``) in
mypy's strict mode: ``python scripts/typecheck.py``.

The repository keeps ``workflows/`` and ``activities/`` at its top level and installs them
under ``factorial`` (``pyproject.toml``'s ``package-dir``). Type checkers only follow the
file system, so this builds the installed layout out of symbolic links in ``.typecheck/``,
runs mypy there, and prints its findings with the repository's own paths.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / ".typecheck"


def build_tree() -> dict[str, str]:
    """Link the installed layout into ``TREE``; return its path prefixes mapped to the repo's."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shutil.rmtree(TREE, ignore_errors=True)
    package = TREE / "factorial"
    package.mkdir(parents=True)
    for source in (ROOT / "factorial").iterdir():
        if source.suffix == ".py" or (source / "__init__.py").is_file():  # modules, subpackages
            (package / source.name).symlink_to(source, target_is_directory=source.is_dir())
    prefixes = {}
    for name, folder in setuptools["package-dir"].items():
        link = TREE / name.replace(".", "/")
        link.symlink_to(ROOT / folder, target_is_directory=True)
        prefixes[f"{link.relative_to(ROOT)}/"] = f"{folder}/"
    prefixes[f"{package.relative_to(ROOT)}/"] = "factorial/"
    return prefixes


def main() -> int:
    prefixes = build_tree()
    done = subprocess.run(
        [sys.executable, "-m", "mypy", str(TREE.relative_to(ROOT) / "factorial")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    for line in (done.stdout + done.stderr).splitlines():
        for tree_path, repo_path in prefixes.items():  # longest (subpackages) first
            if line.startswith(tree_path):
                line = repo_path + line[len(tree_path) :]
                break
        print(line)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
