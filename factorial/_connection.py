"""Connecting to Temporal: TLS / API-key settings and our search attributes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from factorial import _wire as wire
from factorial._converter import DATA_CONVERTER
from factorial._metrics import HISTOGRAM_BUCKETS
from factorial.errors import TemporalUnavailableError, UserError

#: How long connecting may take before the server counts as unavailable.
CONNECT_TIMEOUT = timedelta(seconds=15)


async def connect(
    address: str,
    namespace: str,
    api_key: str | None,
    tls: bool | TLSConfig,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client with Factorial's data converter, or ``TemporalUnavailableError``.

    ``runtime`` (the SDK's default if None) carries the metrics settings of the client and
    of every worker built on it; ``interceptors`` apply to the client and its workers.
    """
    try:
        return await asyncio.wait_for(
            Client.connect(
                address,
                namespace=namespace,
                data_converter=DATA_CONVERTER,
                api_key=api_key,
                tls=tls,
                runtime=runtime,
                interceptors=interceptors,
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


def check_metrics_address(address: str) -> str:
    """``address`` if it reads as ``host:port``, else ``UserError``."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"metrics address must be host:port (e.g. 0.0.0.0:9464), got {address!r}")
    return address


def metrics_runtime(address: str) -> Runtime:
    """A Temporal runtime that serves its metrics for Prometheus at ``http://address/metrics``.

    The SDK's own metrics (``temporal_*``) and Factorial's (``factorial_*``, recorded through
    the SDK's metric meter, see ``factorial._metrics``) share the endpoint. Durations are in
    milliseconds, the SDK's default.

    Raises:
        UserError: The address is malformed or cannot be bound (e.g. already in use).
    """
    config = PrometheusConfig(
        bind_address=check_metrics_address(address),
        histogram_bucket_overrides=HISTOGRAM_BUCKETS,
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=config))
    except ValueError as err:
        raise UserError(f"cannot serve metrics at {address}: {err}") from None
