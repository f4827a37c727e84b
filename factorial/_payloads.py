"""Payload sizes: refuse what Temporal would reject, and split batches into chunks."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from factorial._converter import MAX_PAYLOAD_BYTES, CompressionCodec, encoded_size
from factorial.errors import PayloadTooLargeError

__all__ = ["MAX_PAYLOAD_BYTES", "check_size", "chunk_payloads", "payload_size"]


def payload_size(client: Client, value: Any) -> int:
    """Bytes of ``value`` as one Temporal payload, after the client's codec (if ours)."""
    converter = client.data_converter
    payload = converter.payload_converter.to_payloads([value])[0]
    if isinstance(converter.payload_codec, CompressionCodec):
        return encoded_size(payload)
    return payload.ByteSize()


def check_size(client: Client, inp: Any) -> None:
    """Raise ``PayloadTooLargeError`` if ``inp`` would not fit in one Temporal message."""
    size = payload_size(client, inp)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"payload of {size:,} bytes (compressed) is over the {MAX_PAYLOAD_BYTES:,}-byte "
            "limit of one Temporal message; store large data elsewhere and pass a reference"
        )


def chunk_payloads(
    client: Client, contexts: list[dict[str, Any]], chunk_size: int
) -> list[list[dict[str, Any]]]:
    """Split payloads into chunks of at most ``chunk_size`` items and ~1 MiB (encoded) each."""
    budget = MAX_PAYLOAD_BYTES // 2
    chunks: list[list[dict[str, Any]]] = [[]]
    used = 0
    for index, context in enumerate(contexts):
        size = payload_size(client, context)
        if size > MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError(
                f"payload {index} is {size:,} bytes (compressed), over the "
                f"{MAX_PAYLOAD_BYTES:,}-byte limit"
            )
        if chunks[-1] and (len(chunks[-1]) >= chunk_size or used + size > budget):
            chunks.append([])
            used = 0
        chunks[-1].append(context)
        used += size
    return chunks
