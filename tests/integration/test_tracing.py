"""OpenTelemetry tracing: Temporal's interceptor and our model- and tool-call spans, in one
trace from the client's start of the task down to each tool call."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial._connection import connect
from factorial._tracing import MODEL_CALL_SPAN, TOOL_CALL_SPAN
from factorial._wire import RUN_TURN_ACTIVITY, TASK_WORKFLOW
from factorial._workers import worker_interceptors
from factorial.devserver import DevServer
from factorial.testing import Reply, call_tool, reply
from tests.integration.test_metrics import USAGE, CountingModel, broken, lookup


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, exporting to memory (set once: OTel allows no reset)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    # Later tests keep this provider (it cannot be replaced): stop it keeping their spans.
    provider.shutdown()
    exporter.clear()


@pytest.fixture
async def traced(temporal_server: DevServer) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(temporal_address=temporal_server.address, tracing=True)
    try:
        yield orch
    finally:
        await orch.close()


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of the span's ancestors, nearest first."""
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.parametrize("turn_execution", ["activity", "local"])
async def test_a_task_is_one_trace_with_model_and_tool_spans(
    traced: Orchestrator, exporter: InMemorySpanExporter, unique, turn_execution: str
) -> None:
    calls = call_tool("lookup", topic="tides").tool_calls + call_tool("broken").tool_calls
    agent = Agent(
        name=unique("traced"),
        model=CountingModel([Reply(tool_calls=calls), reply("done")]),
        tools=[lookup, broken],
    )
    traced.register_runner(agent, AgentWorkerConfig(turn_execution=turn_execution))
    await traced.start_workers()
    task = await traced.enqueue_task(agent=agent, owner_id=unique("owner"), payload={})
    assert await task.result() == "done"

    spans = exporter.get_finished_spans()
    mine = [s for s in spans if (s.attributes or {}).get("factorial.task_id") == task.id]
    models = sorted(
        (s for s in mine if s.name == MODEL_CALL_SPAN),
        key=lambda s: (s.attributes or {})["factorial.turn"],
    )
    tools = {(s.attributes or {})["factorial.tool"]: s for s in mine if s.name == TOOL_CALL_SPAN}
    assert [(s.attributes or {})["factorial.turn"] for s in models] == [0, 1]
    for span in models:
        attributes = span.attributes or {}
        assert attributes["factorial.agent"] == agent.name
        assert attributes["factorial.input_tokens"] == USAGE["prompt_tokens"]
        assert attributes["factorial.output_tokens"] == USAGE["completion_tokens"]
    assert set(tools) == {"lookup", "broken"}
    assert (tools["lookup"].attributes or {})["factorial.is_error"] is False
    assert (tools["broken"].attributes or {})["factorial.is_error"] is True
    assert {(s.attributes or {})["factorial.turn"] for s in tools.values()} == {0}

    # One trace: the client's start of the task, the workflow's turn, the activity, our spans.
    by_id = {s.context.span_id: s for s in spans}
    trace_ids = {s.context.trace_id for s in mine}
    assert len(trace_ids) == 1
    for span in [*models, *tools.values()]:
        chain = ancestors(span, by_id)
        assert chain[0] == f"RunActivity:{RUN_TURN_ACTIVITY}", chain
        assert f"StartActivity:{RUN_TURN_ACTIVITY}" in chain, chain
        assert chain[-1] == f"StartWorkflow:{TASK_WORKFLOW}", chain
    [start] = [
        s
        for s in spans
        if s.name == f"StartWorkflow:{TASK_WORKFLOW}"
        and (s.attributes or {}).get("temporalWorkflowID") == task.id
    ]
    assert start.context.trace_id in trace_ids


def test_without_the_extra_tracing_is_a_user_error() -> None:
    """Without OpenTelemetry installed, tracing=True is refused; everything else works."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        for name in ("opentelemetry", "opentelemetry.trace", "opentelemetry.sdk"):
            sys.modules[name] = None  # as if the otel extra were not installed
        from factorial import Agent, Orchestrator, UserError
        from factorial.testing import ScriptedModel, call_tool, reply

        try:
            Orchestrator(tracing=True)
        except UserError as err:
            print("refused:", err)
        def lookup(topic: str) -> str:
            '''Look it up.'''
            return topic
        agent = Agent(model=ScriptedModel([call_tool("lookup", topic="x"), reply("ok")]),
                      tools=[lookup])
        print("inline:", asyncio.run(agent.run_inline({"query": "q"})).output)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "refused: tracing needs OpenTelemetry" in done.stdout
    assert "factorial-temporal[otel]" in done.stdout
    assert "inline: ok" in done.stdout


async def test_workers_on_an_injected_client_get_the_interceptor(
    temporal_server: DevServer,
) -> None:
    """An injected client without Temporal's tracing interceptor: the workers add it; a
    client that has it passes it on to its workers, so they must not add a second one."""
    plain = await connect(temporal_server.address, "default", None, False)
    [added] = worker_interceptors(plain)
    assert isinstance(added, TracingInterceptor)
    traced = await connect(
        temporal_server.address, "default", None, False, interceptors=[TracingInterceptor()]
    )
    assert worker_interceptors(traced) == []
