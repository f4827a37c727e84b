"""Connecting to Temporal: TLS / API-key settings and our search attributes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode

from factorial import _wire as wire
from factorial._converter import DATA_CONVERTER
from factorial.errors import TemporalUnavailableError, UserError

#: How long connecting may take before the server counts as unavailable.
CONNECT_TIMEOUT = timedelta(seconds=15)


async def connect(
    address: str, namespace: str, api_key: str | None, tls: bool | TLSConfig
) -> Client:
    """A client with Factorial's data converter, or ``TemporalUnavailableError``."""
    try:
        return await asyncio.wait_for(
            Client.connect(
                address,
                namespace=namespace,
                data_converter=DATA_CONVERTER,
                api_key=api_key,
                tls=tls,
            ),
            CONNECT_TIMEOUT.total_seconds(),
        )
    except (RuntimeError, TimeoutError) as err:
        raise TemporalUnavailableError(
            f"no Temporal server answered at {address}: {err or 'timed out'}"
        ) from None


def tls_config(
    tls: bool | TLSConfig | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    *,
    has_api_key: bool,
) -> bool | TLSConfig:
    """The client's TLS setting: explicit, from certificate files, or on with an API key."""
    if isinstance(tls, TLSConfig):
        return tls
    if cert or key or ca:
        if tls is False:
            raise UserError("tls=False contradicts the TLS certificate settings given")
        if bool(cert) != bool(key):
            raise UserError("TLS needs both a client certificate and a client key")
        return TLSConfig(
            client_cert=read_file(cert),
            client_private_key=read_file(key),
            server_root_ca_cert=read_file(ca),
        )
    return bool(tls) if tls is not None else has_api_key


def read_file(path: str | None) -> bytes | None:
    """The bytes of a PEM file, or None without a path."""
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise UserError(f"cannot read TLS file {path}: {err.strerror}") from None


async def register_search_attributes(client: Client) -> frozenset[str]:
    """Register Factorial's search attributes if the server lets us; return those usable.

    The time-skipping test server has no custom search attributes at all; Temporal Cloud
    refuses registration from a client (an operator registers them once, see the README)
    but lists them.
    """
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                    for name in wire.SEARCH_ATTRIBUTES
                },
            )
        )
    except RPCError:
        pass  # already registered, or not allowed here
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            return frozenset()
        return frozenset(wire.SEARCH_ATTRIBUTES)
    return frozenset(wire.SEARCH_ATTRIBUTES) & set(listed.custom_attributes)
