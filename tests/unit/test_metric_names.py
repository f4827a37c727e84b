"""The token-count adapter and the metric names of ``factorial._metrics``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from factorial import _metrics


@dataclass
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, (0, 0)),
        ({}, (0, 0)),
        ({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}, (12, 3)),
        ({"input_tokens": 7, "output_tokens": 2}, (7, 2)),
        ({"prompt_tokens": None, "completion_tokens": "3"}, (0, 0)),
        (TokenUsage(prompt_tokens=5, completion_tokens=8), (5, 8)),
    ],
)
def test_token_counts_read_a_dict_or_an_object(usage: object, expected: tuple[int, int]) -> None:
    assert _metrics.token_counts(usage) == expected


def test_names_are_prometheus_names_under_one_prefix() -> None:
    assert len(set(_metrics.NAMES)) == len(_metrics.NAMES)
    for name in _metrics.NAMES:
        assert name.startswith("factorial_") and name.replace("_", "").isalnum(), name
    assert set(_metrics.HISTOGRAM_BUCKETS) <= set(_metrics.NAMES)


def test_recording_outside_temporal_is_a_no_op() -> None:
    """``run_inline`` turns record nothing and need no worker."""
    _metrics.record_turn("inline", "succeeded", 0.1, attempt=2)
    _metrics.record_model_call("inline", 0.1, {"prompt_tokens": 1}, "succeeded")
    _metrics.record_tool_call("inline", "lookup", is_error=True)
