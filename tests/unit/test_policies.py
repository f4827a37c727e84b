"""Join and failure policies: what they accept, and when a failure policy trips."""

from __future__ import annotations

import pytest

from factorial import (
    FailurePolicy,
    FunctionTool,
    Quorum,
    ToolDefinitionError,
    UserError,
    forking_tool,
    function_tool,
)
from factorial._policies import join_count


def tool() -> list[str]:
    """A tool."""
    return []


def test_join_counts() -> None:
    assert join_count("all") is None
    assert join_count("first") == 1
    assert join_count(Quorum(3)) == 3
    assert forking_tool(tool, timeout=5, join=Quorum(2)).join == Quorum(2)
    assert forking_tool(tool, timeout=5).join == "all"


@pytest.mark.parametrize("join", ["any", 3, None])
def test_a_bad_join_is_refused_at_definition(join: object) -> None:
    with pytest.raises(ToolDefinitionError, match="join must be"):
        forking_tool(tool, timeout=5, join=join)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, -1, True, 1.5])
def test_a_quorum_needs_a_positive_int(k: object) -> None:
    with pytest.raises(ToolDefinitionError, match="k >= 1"):
        Quorum(k)  # type: ignore[arg-type]


def test_only_a_forking_tool_has_a_join() -> None:
    with pytest.raises(ToolDefinitionError, match="only a forking tool"):
        FunctionTool("plain", "a tool", {}, tool, join="first")
    assert function_tool(tool).join == "all"


def test_failure_policy_trips_past_what_it_tolerates() -> None:
    policy = FailurePolicy(max_failed=2)
    assert policy.tripped(2, 10) is None
    assert policy.tripped(3, 10) == "3 tasks failed, more than max_failed=2"
    ratio = FailurePolicy(max_failed_ratio=0.2)
    assert ratio.tripped(2, 10) is None
    assert ratio.tripped(3, 10) == "3 of 10 tasks failed, more than max_failed_ratio=0.2"
    assert FailurePolicy(max_failed=0).tripped(1, 1) == "1 task failed, more than max_failed=0"
    both = FailurePolicy(max_failed=5, max_failed_ratio=0.1)
    assert both.tripped(2, 10) is not None and both.tripped(1, 10) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs max_failed or max_failed_ratio"),
        ({"max_failed": -1}, "max_failed must be >= 0"),
        ({"max_failed_ratio": 1.0}, "max_failed_ratio must be in"),
        ({"max_failed_ratio": -0.1}, "max_failed_ratio must be in"),
        ({"max_failed": "two"}, "invalid FailurePolicy: max_failed"),
        ({"max_failed": 1, "max_failures": 2}, "invalid FailurePolicy: max_failures"),
    ],
)
def test_a_bad_failure_policy_is_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(UserError, match=message):
        FailurePolicy(**fields)  # type: ignore[arg-type]
