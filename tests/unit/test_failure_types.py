"""The workflow/client boundary names its failures in one table, ``_wire.FailureType``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from factorial import _wire as wire
from factorial._tasks import update_error
from factorial.errors import FactorialError, InvalidPayloadError, TaskStateError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p for folder in ("workflows", "activities", "factorial") for p in (ROOT / folder).glob("*.py")
]


def _error_types_raised() -> list[ast.expr]:
    """The ``type=`` argument of every ``ApplicationError(...)`` in the sources."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ApplicationError"
            ):
                found += [k.value for k in node.keywords if k.arg == "type"]
    return found


def test_no_failure_type_is_a_string_literal() -> None:
    literals = [ast.unparse(t) for t in _error_types_raised() if isinstance(t, ast.Constant)]
    assert literals == []


def test_every_failure_type_is_raised_somewhere() -> None:
    raised = {ast.unparse(t).rpartition(".")[2] for t in _error_types_raised()}
    assert {t.name for t in wire.FailureType} <= raised


@pytest.mark.parametrize(
    ("failure_type", "expected"),
    [
        (wire.FailureType.TASK_STATE, TaskStateError),
        (wire.FailureType.INVALID_PAYLOAD, InvalidPayloadError),
        (wire.FailureType.UNKNOWN_TOOL_CALL, TaskStateError),
        ("SomethingElse", TaskStateError),
    ],
)
def test_an_update_failure_maps_to_its_client_error(
    failure_type: str, expected: type[FactorialError]
) -> None:
    err = update_error(
        WorkflowUpdateFailedError(ApplicationError("it says why", type=failure_type))
    )
    assert type(err) is expected and "it says why" in str(err)
