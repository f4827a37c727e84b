"""Connection settings of the Orchestrator: address, namespace, API key and TLS.

The settings are read without a server; the connection failures run against the real
session dev server (and a closed port next to it).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, TLSConfig

from factorial import Orchestrator
from factorial.devserver import DevServer, free_port, namespace_answers
from factorial.errors import TemporalUnavailableError, UserError

ENV_VARS = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS_CERT",
    "TEMPORAL_TLS_KEY",
    "TEMPORAL_TLS_CA",
)

#: A failed connection must be reported well within this many seconds.
FAIL_FAST = 10.0


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test without the connection variables of the surrounding shell."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pem_files(tmp_path: Path) -> dict[str, Path]:
    """Small stand-ins for a client certificate, its key and a server CA (never parsed)."""
    files = {
        "cert": b"-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n",
        "key": b"-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n",
        "ca": b"-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n",
    }
    paths = {}
    for name, content in files.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(content)
        paths[name] = path
    return paths


# -- settings -----------------------------------------------------------------------------


def test_defaults_are_a_local_plaintext_server() -> None:
    orch = Orchestrator()
    assert orch.temporal_address == "localhost:7233"
    assert orch.namespace == "default"
    assert orch._api_key is None
    assert orch._tls is False


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "my-ns.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "my-ns.a1b2c")
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret-key")
    orch = Orchestrator()
    assert orch.temporal_address == "my-ns.a1b2c.tmprl.cloud:7233"
    assert orch.namespace == "my-ns.a1b2c"
    assert orch._api_key == "secret-key"
    assert orch._tls is True


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "from-env:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "env-ns")
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-key")
    orch = Orchestrator("from-arg:7233", "arg-ns", api_key="arg-key")
    assert orch.temporal_address == "from-arg:7233"
    assert orch.namespace == "arg-ns"
    assert orch._api_key == "arg-key"


def test_empty_api_key_variable_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty variable (`TEMPORAL_API_KEY=` in an env file) is no key, not an empty one.
    monkeypatch.setenv("TEMPORAL_API_KEY", "")
    orch = Orchestrator()
    assert orch._api_key is None
    assert orch._tls is False


def test_api_key_turns_tls_on() -> None:
    assert Orchestrator(api_key="k")._tls is True


def test_explicit_tls_false_keeps_plaintext_with_an_api_key() -> None:
    # For an API-key proxy on a trusted network; Temporal Cloud needs TLS.
    assert Orchestrator(api_key="k", tls=False)._tls is False


def test_tls_true_uses_system_roots() -> None:
    assert Orchestrator(tls=True)._tls is True


def test_mtls_files_from_environment(
    monkeypatch: pytest.MonkeyPatch, pem_files: dict[str, Path]
) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_CERT", str(pem_files["cert"]))
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(pem_files["key"]))
    monkeypatch.setenv("TEMPORAL_TLS_CA", str(pem_files["ca"]))
    tls = Orchestrator()._tls
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == pem_files["cert"].read_bytes()
    assert tls.client_private_key == pem_files["key"].read_bytes()
    assert tls.server_root_ca_cert == pem_files["ca"].read_bytes()


def test_mtls_files_from_arguments(pem_files: dict[str, Path]) -> None:
    tls = Orchestrator(
        tls_client_cert_path=str(pem_files["cert"]),
        tls_client_key_path=str(pem_files["key"]),
    )._tls
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == pem_files["cert"].read_bytes()
    assert tls.client_private_key == pem_files["key"].read_bytes()
    assert tls.server_root_ca_cert is None


def test_server_ca_alone_is_tls_without_client_cert(pem_files: dict[str, Path]) -> None:
    tls = Orchestrator(tls_server_ca_path=str(pem_files["ca"]))._tls
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == pem_files["ca"].read_bytes()
    assert tls.client_cert is None
    assert tls.client_private_key is None


def test_cert_without_key_is_a_user_error(pem_files: dict[str, Path]) -> None:
    with pytest.raises(UserError, match="certificate and a client key"):
        Orchestrator(tls_client_cert_path=str(pem_files["cert"]))


def test_key_without_cert_from_environment_is_a_user_error(
    monkeypatch: pytest.MonkeyPatch, pem_files: dict[str, Path]
) -> None:
    monkeypatch.setenv("TEMPORAL_TLS_KEY", str(pem_files["key"]))
    with pytest.raises(UserError):
        Orchestrator()


def test_missing_tls_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read TLS file .*missing.pem"):
        Orchestrator(tls_server_ca_path=str(tmp_path / "missing.pem"))


def test_tls_false_with_certificates_is_a_user_error(pem_files: dict[str, Path]) -> None:
    with pytest.raises(UserError, match="contradicts"):
        Orchestrator(tls=False, tls_server_ca_path=str(pem_files["ca"]))


def test_empty_address_and_namespace_variables_fall_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "")
    orch = Orchestrator()
    assert (orch.temporal_address, orch.namespace) == ("localhost:7233", "default")


def test_explicit_tls_config_passes_through(pem_files: dict[str, Path]) -> None:
    config = TLSConfig(domain="temporal.internal", server_root_ca_cert=b"ca")
    # A TLSConfig wins over certificate paths (which are not even read).
    orch = Orchestrator(tls=config, tls_client_cert_path=str(pem_files["cert"]), api_key="k")
    assert orch._tls is config


# -- connecting ---------------------------------------------------------------------------


async def test_connects_to_the_address_in_the_environment(
    temporal_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_server.address)
    orch = Orchestrator()
    try:
        client = await asyncio.wait_for(orch.client(), 30)
        assert client.namespace == "default"
        assert await orch.client() is client
    finally:
        await orch.close()


async def test_closed_port_raises_temporal_unavailable_quickly(
    temporal_server: DevServer,
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    assert address != temporal_server.address
    orch = Orchestrator(temporal_address=address)
    started = time.monotonic()
    with pytest.raises(TemporalUnavailableError, match=rf"127\.0\.0\.1:{port}"):
        await asyncio.wait_for(orch.client(), FAIL_FAST * 3)
    assert time.monotonic() - started < FAIL_FAST
    await orch.close()


async def test_failed_connection_can_be_retried_elsewhere(temporal_server: DevServer) -> None:
    orch = Orchestrator(temporal_address=f"127.0.0.1:{free_port()}")
    try:
        with pytest.raises(TemporalUnavailableError):
            await asyncio.wait_for(orch.client(), FAIL_FAST * 3)
        orch.temporal_address = temporal_server.address  # what `--address` does
        client = await asyncio.wait_for(orch.client(), 30)
        assert client.namespace == "default"
    finally:
        await orch.close()


async def test_tls_against_a_plaintext_server_raises_quickly(temporal_server: DevServer) -> None:
    # An API key turns TLS on; the dev server speaks plaintext, so the handshake fails.
    orch = Orchestrator(temporal_address=temporal_server.address, api_key="not-a-real-key")
    started = time.monotonic()
    with pytest.raises(TemporalUnavailableError):
        await asyncio.wait_for(orch.client(), FAIL_FAST * 3)
    assert time.monotonic() - started < FAIL_FAST
    await orch.close()


async def test_dev_server_is_ready_when_start_returns(tmp_path: Path) -> None:
    """Ready means the namespace answers: a client may start work at once, no retry."""
    server = await asyncio.to_thread(DevServer(log_file=tmp_path / "server.log").start)
    try:
        client = await Client.connect(server.address)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default")
        )
        assert (await client.count_workflows()).count == 0
    finally:
        server.stop()


def test_nothing_listening_is_not_ready() -> None:
    assert not namespace_answers(f"127.0.0.1:{free_port()}", timeout=1.0)
