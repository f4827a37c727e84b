"""The metric names of ``factorial._metrics``."""

from __future__ import annotations

from factorial import _metrics


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
