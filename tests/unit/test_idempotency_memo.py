"""What an idempotency key's memo records, and how a repeated enqueue is compared with it."""

from __future__ import annotations

from factorial import Budget, FailurePolicy
from factorial._idempotency import conflict, fingerprint

PAYLOADS = [{"query": "a"}]


def test_the_memo_records_the_limits_and_a_repeat_is_compared_on_them() -> None:
    memo = fingerprint("agent", PAYLOADS, budget=Budget(tokens=10), on_failure=None)
    assert memo["budget"] == Budget(tokens=10).model_dump_json() and memo["on_failure"] == ""
    same = fingerprint("agent", [{"query": "a"}], budget=Budget(tokens=10), on_failure=None)
    assert conflict(memo, same, "batch b") is None
    other = fingerprint("agent", PAYLOADS, budget=None, on_failure=FailurePolicy(max_failed=0))
    problem = conflict(memo, other, "batch b")
    assert problem is not None and "another budget" in problem
    assert conflict(memo, fingerprint("agent", [{"query": "b"}]), "batch b") is not None
    assert conflict(None, same, "batch b") == "batch b was not enqueued with an idempotency key"


def test_a_memo_from_before_the_limits_is_not_compared_on_them() -> None:
    old = fingerprint("agent", PAYLOADS)  # agent and payloads only, as recorded before
    assert set(old) == {"agent", "payloads_sha256"}
    new = fingerprint("agent", PAYLOADS, budget=Budget(turns=2), task_budget=None)
    assert conflict(old, new, "task t") is None
    assert conflict(new, old, "task t") is not None  # a limit recorded now must match
