"""The SDK's workflow sandbox, with the data converter's per-payload lookup taken out of it.

For every payload a worker decodes or encodes (three passes over each activation and each
completion), the SDK's ``_CommandAwareDataConverter`` asks the workflow instance which
serialization context applies: the workflow's, or the activity's or child's that the payload
belongs to. With the sandbox, each ask enters it: the SDK compiles a snippet and runs it under
the sandbox's importer, which swaps ``builtins.__import__`` and ``sys.modules`` in and out. The
answer is the SDK's own lookup in the instance's pending commands; no workflow code runs in it.

``SandboxedRunner`` makes the same call on the same sandboxed instance without entering the
sandbox (still flagged as runtime, so a restricted access in it would still raise). Workflow
code itself still runs only inside the sandbox, which checks it as before. Replaying a
two-turn task costs 11.1-11.9 ms of CPU this way against 14.0-14.9 ms through the SDK's path
(``python -m benchmarks.replay_cpu``).

This subclasses the SDK's private sandbox instance (``temporalio`` is pinned to the version
it was written for): if the SDK changes it, every sandboxed workflow run fails at once, and
``tests/integration/test_sandbox.py`` says so.
"""

from __future__ import annotations

from temporalio.converter import SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._in_sandbox import InSandbox
from temporalio.worker.workflow_sandbox._runner import _Instance

#: The name the SDK gives the sandboxed instance in the sandbox's globals.
_IN_SANDBOX = "__temporal_in_sandbox"


class SandboxedRunner(SandboxedWorkflowRunner):
    """``SandboxedWorkflowRunner`` whose instances answer context lookups directly."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """A sandboxed instance (``_DirectLookups``)."""
        return _DirectLookups(det, self.runner_class, self.restrictions)


class _DirectLookups(_Instance):
    """A sandboxed workflow instance that looks up serialization contexts without entering."""

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> SerializationContext | None:
        """The context of the payloads of ``command_info`` (the SDK's lookup)."""
        self.importer.restriction_context.is_runtime = True
        try:
            return self._in_sandbox().get_serialization_context(command_info)
        finally:
            self.importer.restriction_context.is_runtime = False

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        """The external-storage context of ``command_info``'s payloads (the SDK's lookup)."""
        self.importer.restriction_context.is_runtime = True
        try:
            return self._in_sandbox().get_external_store_context(command_info)
        finally:
            self.importer.restriction_context.is_runtime = False

    def _in_sandbox(self) -> InSandbox:
        in_sandbox = self.globals_and_locals[_IN_SANDBOX]
        assert isinstance(in_sandbox, InSandbox)
        return in_sandbox
