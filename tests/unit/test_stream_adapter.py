"""``workflows/_stream.py`` leans on internals of ``temporalio.contrib.workflow_streams``.

These tests pin each one, so an SDK upgrade that changes them fails here, not in production.
"""

from __future__ import annotations

import inspect

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.contrib.workflow_streams import PollInput, WorkflowStream, WorkflowStreamItem
from temporalio.contrib.workflow_streams import _stream as sdk_stream
from temporalio.contrib.workflow_streams import _types as sdk_types

from factorial import _wire
from factorial.workflows._stream import POLL_BYTES, BoundedStream


def detached(cls: type[WorkflowStream], items: list[WorkflowStreamItem], base: int):
    """A stream object with a log, built outside a workflow (no handlers registered)."""
    stream = object.__new__(cls)
    stream._log = list(items)
    stream._base_offset = base
    stream._detaching = False
    return stream


def event(index: int, size: int = 16, topic: str = "events") -> WorkflowStreamItem:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'"%s"' % (b"x" * size))
    payload.metadata["i"] = str(index).encode()
    return WorkflowStreamItem(topic=topic, data=payload)


def test_protocol_names_match_the_sdk() -> None:
    assert _wire.STREAM_PUBLISH_SIGNAL == sdk_stream._PUBLISH_SIGNAL
    assert _wire.STREAM_POLL == sdk_stream._POLL
    assert _wire.STREAM_OFFSET_QUERY == sdk_stream._OFFSET_QUERY
    assert _wire.STREAM_DRAINING == sdk_types.STREAM_DRAINING_ERROR_TYPE
    assert _wire.STREAM_TRUNCATED == sdk_types.TRUNCATED_OFFSET_ERROR_TYPE
    assert _wire.FailureType.STREAM_BUSY not in {_wire.STREAM_DRAINING, _wire.STREAM_TRUNCATED}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("_validate_poll", ["self", "_payload"]),
        ("_on_poll", ["self", "payload"]),
        ("_collect_batch", ["self", "payload"]),
        ("_on_offset", ["self"]),
    ],
)
def test_overridden_methods_still_exist(name: str, params: list[str]) -> None:
    method = getattr(WorkflowStream, name)
    assert list(inspect.signature(method).parameters) == params
    assert inspect.iscoroutinefunction(method) == (name == "_on_poll")


def test_state_attributes_still_exist() -> None:
    init = inspect.getsource(WorkflowStream.__init__)
    for attribute in ("self._log", "self._base_offset", "self._detaching"):
        assert attribute in init


def test_small_answers_match_the_sdk_item_for_item() -> None:
    items = [event(i, topic="events" if i % 3 else "other") for i in range(20)]
    for from_offset in (0, 100, 107, 119, 120):
        for topics in ([], ["events"]):
            poll = PollInput(topics=topics, from_offset=from_offset)
            ours = detached(BoundedStream, items, 100)._collect_batch(poll)
            theirs = detached(WorkflowStream, items, 100)._collect_batch(poll)
            assert ours == theirs


def test_answers_are_capped_and_resume_where_they_stopped() -> None:
    items = [event(i, size=40_000) for i in range(30)]
    stream = detached(BoundedStream, items, 5)
    offset, seen = 5, []
    while True:
        result = stream._collect_batch(PollInput(topics=[], from_offset=offset))
        size = sum(len(item.data) + len(item.topic) for item in result.items)
        assert size <= POLL_BYTES
        seen += [item.offset for item in result.items]
        offset = result.next_offset
        if not result.more_ready:
            break
    assert seen == list(range(5, 35))
    assert stream._on_offset() == 35


def test_wire_items_decode_back_to_the_payload() -> None:
    items = [event(i) for i in range(3)]
    result = detached(BoundedStream, items, 0)._collect_batch(PollInput(topics=[], from_offset=1))
    assert [sdk_types._decode_payload(item.data) for item in result.items] == [
        item.data for item in items[1:]
    ]
