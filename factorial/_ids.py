"""Ids: validation of user-supplied ids and the workflow ids Factorial derives from them."""

from __future__ import annotations

import re
import uuid

from factorial.errors import InvalidIdError

# Temporal accepts almost any string as a workflow id; we accept a readable, URL- and
# CLI-safe subset so ids can be typed, logged and put in `temporal workflow list` queries.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@=+-]{0,199}$")

EVENTS_WORKFLOW_PREFIX = "factorial-events-"


def validate_id(value: object, what: str) -> str:
    """Return ``value`` if it is a usable id, else raise ``InvalidIdError``."""
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        raise InvalidIdError(
            f"invalid {what} {value!r}: use 1-200 characters from letters, digits and "
            "_ . : @ = + -, starting with a letter or digit"
        )
    return value


def new_task_id() -> str:
    """A fresh task id (also the task workflow's id)."""
    return f"task-{uuid.uuid4().hex}"


def new_batch_id() -> str:
    """A fresh batch id (also the batch workflow's id)."""
    return f"batch-{uuid.uuid4().hex}"


def agent_task_queue_name(agent_name: str) -> str:
    """The default task queue of an agent's task workflows and turns."""
    return f"factorial-agent-{agent_name}"


def events_workflow_id(owner_id: str) -> str:
    """The id of the workflow that hosts ``owner_id``'s event stream."""
    return f"{EVENTS_WORKFLOW_PREFIX}{owner_id}"
