"""The example application: a research agent that fans out to search sub-agents.

``research_agent`` answers a question by calling its forking tool ``fan_out_research``, which
spawns one ``search_agent`` sub-task per topic; once they have all ended the research agent
reads their ``<sub_task_results>`` block and writes a short answer. The demo runs it, and so
can any worker process::

    factorial worker factorial.example_app:orchestrator --address localhost:7233

Models: without a model name, or without its provider's API key (``OPENAI_API_KEY`` for
the OpenAI models), both agents run on scripted models (deterministic, no network, with
small delays so progress is watchable). ``FACTORIAL_MODEL=gpt-4.1-mini`` makes the
module-level ``orchestrator`` use that catalog model when the key is set.

Importing this module connects to nothing: the ``Orchestrator`` connects on first use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from factorial.agent import Agent
from factorial.context import ExecutionContext
from factorial.errors import UserError
from factorial.models import CATALOG, PROVIDERS, Model, ModelRequest
from factorial.orchestrator import Orchestrator
from factorial.testing import Call, Reply, ScriptedModel
from factorial.tools import FunctionTool, forking_tool

RESEARCH_AGENT = "research_agent"
SEARCH_AGENT = "search_agent"

#: Seconds the forking tool waits for its search sub-tasks.
FAN_OUT_TIMEOUT = 600

_RESULT = re.compile(
    r'<sub_task_(result|error) sub_task_id="([^"]*)">(.*?)</sub_task_\1>', re.DOTALL
)


# -- tools ------------------------------------------------------------------------------------


def search_web(query: str) -> str:
    """Search the web and return the top results.

    Args:
        query: What to search for.
    """
    return (
        f"Top results for {query!r}: (1) Temporal docs: durable execution keeps long-running "
        "work alive across crashes and restarts. (2) Blog: agents as workflows, one retried "
        "activity per LLM turn. (3) Forum: stream progress events so users see what runs."
    )


def make_fan_out_tool(search: Agent) -> FunctionTool:
    """The research agent's forking tool, spawning ``search`` sub-tasks."""

    @forking_tool(timeout=FAN_OUT_TIMEOUT)
    async def fan_out_research(  # noqa: D417 - execution_ctx is injected, not the model's
        topics: list[str], execution_ctx: ExecutionContext
    ) -> list[str]:
        """Research several topics in parallel, one search sub-agent per topic.

        Args:
            topics: Two or three short, distinct topics that together answer the question.
        """
        if not topics:
            raise ValueError("give at least one topic")
        batch = await execution_ctx.spawn_child_tasks(search, [{"query": t} for t in topics])
        return batch.task_ids

    return fan_out_research


# -- scripted models ------------------------------------------------------------------------


def _first_user(request: ModelRequest) -> str:
    for message in request.messages:
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _last(request: ModelRequest) -> str:
    return str(request.messages[-1].get("content") or "") if request.messages else ""


def topics_for(query: str) -> list[str]:
    """The two or three topics the scripted research agent derives from a question."""
    core = query.strip().rstrip("?.! ") or "the question"
    angles = ("key concepts", "how it works in practice", "common pitfalls")
    return [f"{core}: {angle}" for angle in angles[: 2 + len(core) % 2]]


def summarize_results(query: str, block: str) -> str:
    """A short answer built from a ``<sub_task_results>`` block."""
    found = _RESULT.findall(block)
    lines = [
        f"- {' '.join(text.split())}" if kind == "result" else f"- ({task_id} failed: {text})"
        for kind, task_id, text in found
    ]
    ok = sum(kind == "result" for kind, _, _ in found)
    header = f"Summary of {ok}/{len(found)} sub-task results for {query!r}:"
    return "\n".join([header, *lines])


def research_script(request: ModelRequest) -> Reply:
    """Turn 0: fan out over topics from the question; then: answer from the results."""
    query = _first_user(request)
    if request.turn == 0:
        call = Call(name="fan_out_research", arguments={"topics": topics_for(query)})
        return Reply(tool_calls=[call], delay=0.3)
    return Reply(content=summarize_results(query, _last(request)), delay=0.4)


def search_script(request: ModelRequest) -> Reply:
    """Turn 0: search the topic; then: a one-line finding."""
    topic = _first_user(request)
    if request.turn == 0:
        return Reply(tool_calls=[Call(name="search_web", arguments={"query": topic})], delay=0.3)
    return Reply(
        content=f"{topic}: durable execution keeps work alive across crashes, one retried "
        "activity per turn, with live progress events.",
        delay=0.3,
    )


# -- models and agents --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleModels:
    """The models of the two agents, and how they were chosen."""

    research: Model
    search: Model
    #: True when both are scripted (no model asked for, or no API key for it).
    scripted: bool
    #: Why a requested model is not used (its key is missing), else None.
    note: str | None = None


def _key_env(model: Model) -> str:
    entry = PROVIDERS.get(model.provider)
    return entry[0] if entry else "OPENAI_API_KEY"


def build_models(model_name: str | None) -> ExampleModels:
    """The catalog model ``model_name`` for both agents if its API key is set, else scripts.

    Raises:
        UserError: ``model_name`` is not in ``factorial.models.CATALOG``.
    """
    scripted = ExampleModels(
        research=ScriptedModel(research_script, name="scripted-research"),
        search=ScriptedModel(search_script, name="scripted-search"),
        scripted=True,
    )
    if not model_name:
        return scripted
    model = CATALOG.get(model_name)
    if model is None:
        choices = ", ".join(sorted(CATALOG))
        raise UserError(f"unknown model {model_name!r}; choose one of: {choices}")
    key_env = _key_env(model)
    if not os.environ.get(key_env):
        return ExampleModels(
            research=scripted.research,
            search=scripted.search,
            scripted=True,
            note=f"{key_env} is not set, so {model_name} is not used.",
        )
    return ExampleModels(research=model, search=model, scripted=False)


RESEARCH_INSTRUCTIONS = (
    "You are a research lead. Call fan_out_research exactly once with two or three short, "
    "distinct topics that together answer the user's question. When the <sub_task_results> "
    "block arrives, answer the question in three or four sentences using those results; "
    "do not call any tool again."
)
SEARCH_INSTRUCTIONS = (
    "You are a web researcher. Call search_web exactly once with a focused query for the "
    "topic you are given, then state the key finding in one or two sentences. Do not call "
    "any tool after the first search."
)


def build_agents(models: ExampleModels | str | None = None) -> tuple[Agent, Agent]:
    """A fresh ``(research_agent, search_agent)`` pair on ``models`` (or a model name)."""
    if not isinstance(models, ExampleModels):
        models = build_models(models)
    search = Agent(
        name=SEARCH_AGENT,
        description="Searches the web for one topic and reports the key finding.",
        instructions=SEARCH_INSTRUCTIONS,
        tools=[search_web],
        model=models.search,
        max_turns=2,
    )
    research = Agent(
        name=RESEARCH_AGENT,
        description="Splits a question into topics, researches them in parallel, answers.",
        instructions=RESEARCH_INSTRUCTIONS,
        tools=[make_fan_out_tool(search)],
        model=models.research,
        max_turns=3,
    )
    return research, search


def build_orchestrator(
    temporal_address: str | None = None,
    namespace: str | None = None,
    models: ExampleModels | str | None = None,
) -> Orchestrator:
    """An ``Orchestrator`` with a fresh pair of the example agents registered."""
    orch = Orchestrator(temporal_address=temporal_address, namespace=namespace)
    for agent in build_agents(models):
        orch.register_runner(agent=agent)
    return orch


research_agent, search_agent = build_agents(os.environ.get("FACTORIAL_MODEL") or None)

#: ``factorial worker factorial.example_app:orchestrator`` runs both agents' workers.
orchestrator = Orchestrator()
orchestrator.register_runner(agent=research_agent)
orchestrator.register_runner(agent=search_agent)
