"""Rules of the house that a linter does not check."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p for folder in ("factorial", "workflows", "activities") for p in (ROOT / folder).rglob("*.py")
)
_IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def test_every_type_ignore_says_why_on_its_line() -> None:
    bare = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found = _IGNORE.search(line)
            if found and not found.group("rest").strip().startswith("#"):
                bare.append(f"{path.relative_to(ROOT)}:{number}")
    assert bare == []
