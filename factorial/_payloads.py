"""Payload sizes: refuse what Temporal would reject, and split batches into chunks."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from factorial.errors import PayloadTooLargeError

#: Temporal rejects payloads over 2 MiB; keep room for the envelope.
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024 - 64 * 1024


def payload_size(client: Client, value: Any) -> int:
    """Bytes of ``value`` as one Temporal payload."""
    return client.data_converter.payload_converter.to_payloads([value])[0].ByteSize()


def check_size(client: Client, inp: Any) -> None:
    """Raise ``PayloadTooLargeError`` if ``inp`` would not fit in one Temporal message."""
    size = payload_size(client, inp)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"payload of {size:,} bytes is over the {MAX_PAYLOAD_BYTES:,}-byte "
            "limit of one Temporal message; store large data elsewhere and pass a reference"
        )


def chunk_payloads(
    client: Client, contexts: list[dict[str, Any]], chunk_size: int
) -> list[list[dict[str, Any]]]:
    """Split payloads into chunks of at most ``chunk_size`` items and ~1 MiB each."""
    budget = MAX_PAYLOAD_BYTES // 2
    chunks: list[list[dict[str, Any]]] = [[]]
    used = 0
    for index, context in enumerate(contexts):
        size = payload_size(client, context)
        if size > MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError(
                f"payload {index} is {size:,} bytes, over the {MAX_PAYLOAD_BYTES:,}-byte limit"
            )
        if chunks[-1] and (len(chunks[-1]) >= chunk_size or used + size > budget):
            chunks.append([])
            used = 0
        chunks[-1].append(context)
        used += size
    return chunks
