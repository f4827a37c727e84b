"""How Factorial's values travel through Temporal: pydantic JSON, compressed when large.

Every client and worker uses ``DATA_CONVERTER``: Temporal's pydantic converter plus
``CompressionCodec``, a ``PayloadCodec`` that zlib-compresses payloads larger than
``COMPRESS_ABOVE`` bytes. Conversations and event batches are repetitive JSON and shrink
5-10x, so a task's context stays well inside Temporal's 2 MiB payload limit for much longer.
Small payloads (ids, statuses, most events) stay plain JSON, readable in the Web UI as they
are; compressed ones show as ``binary/zlib`` there.

A payload that was never compressed decodes as it is, so histories recorded before the codec
existed still replay.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

#: Payloads at most this large are sent as they are.
COMPRESS_ABOVE = 4 * 1024
ENCODING = b"binary/zlib"
#: Temporal rejects payloads over 2 MiB; keep room for the envelope.
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024 - 64 * 1024


class CompressionCodec(PayloadCodec):
    """zlib-compresses large payloads; decoding passes other payloads through."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Compress each payload over ``COMPRESS_ABOVE`` bytes when that makes it smaller."""
        return [compress(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Undo ``encode``."""
        return [decompress(p) for p in payloads]


def compress(payload: Payload) -> Payload:
    """``payload`` compressed, if it is large and compresses; else ``payload`` itself."""
    raw = payload.SerializeToString()
    if len(raw) <= COMPRESS_ABOVE:
        return payload
    packed = zlib.compress(raw, 6)
    if len(packed) >= len(raw):
        return payload
    return Payload(metadata={"encoding": ENCODING}, data=packed)


def decompress(payload: Payload) -> Payload:
    """The original of a payload ``compress`` produced; any other payload as it is."""
    if payload.metadata.get("encoding") != ENCODING:
        return payload
    original = Payload()
    original.ParseFromString(zlib.decompress(payload.data))
    return original


def encoded_size(payload: Payload) -> int:
    """Bytes ``payload`` takes on the wire once encoded."""
    return compress(payload).ByteSize()


DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, payload_codec=CompressionCodec()
)
