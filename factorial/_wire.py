"""What crosses the workflow/activity/client boundary, one pydantic model per call.

Every field here is stored in workflow history, so inputs stay small: the task workflow sends
the turn activity only the context and the ids it needs; the agent definition (instructions,
tools, model) never crosses, it is looked up by name in the worker. A payload is capped at
about 2 MiB by Temporal; long conversations continue-as-new between turns.

Everything is defined in one part per concern and re-exported here, so workflows,
activities and the client import this one module: the names (``_wire_names``), a task and
its turns (``_task_wire``), event streams (``_event_wire``) and batches (``_batch_wire``).
All of it is pure (pydantic models, constants, small functions): workflows import it inside
``workflow.unsafe.imports_passed_through()``.
"""

# Re-exports: each part's ``__all__`` is its contract.
from factorial._batch_wire import *  # noqa: F403
from factorial._event_wire import *  # noqa: F403
from factorial._task_wire import *  # noqa: F403
from factorial._wire_names import *  # noqa: F403
