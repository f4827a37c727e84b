"""``Orchestrator.update_worker_configs``: the worker's concurrency flags, validated."""

from __future__ import annotations

import pytest

from factorial import Agent, AgentWorkerConfig, Orchestrator
from factorial.errors import UserError
from factorial.testing import ScriptedModel, reply


def test_worker_config_overrides_are_validated() -> None:
    """``factorial worker --max-concurrent-*`` goes through ``update_worker_configs``."""
    orchestrator = Orchestrator()
    agent = Agent(name="sized", model=ScriptedModel([reply("ok")]))
    orchestrator.register_runner(agent, AgentWorkerConfig(max_concurrent_turns=5, max_retries=1))
    orchestrator.update_worker_configs(max_concurrent_turns=7, max_concurrent_tasks=9)
    config = orchestrator._config_of(agent)
    assert (config.max_concurrent_turns, config.max_concurrent_tasks) == (7, 9)
    assert config.max_retries == 1  # the rest is kept
    with pytest.raises(UserError, match="no field 'max_turns_at_once'"):
        orchestrator.update_worker_configs(max_turns_at_once=3)
    with pytest.raises(UserError, match="invalid worker config for 'sized'"):
        orchestrator.update_worker_configs(max_concurrent_turns=0)
    assert orchestrator._config_of(agent).max_concurrent_turns == 7
