"""Ids: validation of user-supplied ids and the workflow ids Factorial derives from them."""

from __future__ import annotations

import hashlib
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


def idempotent_id(kind: str, owner_id: str, key: str) -> str:
    """The task or batch id (``kind``) an owner's idempotency key names, the same every time.

    The key is scoped to the owner: two owners using one key name two runs.
    """
    validate_id(owner_id, "owner id")
    if not isinstance(key, str) or not key:
        raise InvalidIdError(f"invalid idempotency key {key!r}: use a non-empty string")
    digest = hashlib.sha256(f"{owner_id}\x00{key}".encode()).hexdigest()[:32]
    return f"{kind}-idem-{digest}"


#: What ``resumed_task_id`` puts between the first task's id and a fresh suffix.
_RESUMED = ".resumed."


def resumed_task_id(task_id: str) -> str:
    """A fresh id for a run that resumes ``task_id``: its first task's id, then a suffix.

    Resuming a resumed task keeps the first task's id, so ids do not grow with each resume.
    """
    first = task_id.split(_RESUMED, 1)[0][:179]  # the whole id stays within 200 characters
    return f"{first}{_RESUMED}{uuid.uuid4().hex[:12]}"


def agent_task_queue_name(agent_name: str) -> str:
    """The default task queue of an agent's task workflows and turns."""
    return f"factorial-agent-{agent_name}"


def events_workflow_id(owner_id: str) -> str:
    """The id of the workflow that hosts ``owner_id``'s event stream."""
    return f"{EVENTS_WORKFLOW_PREFIX}{owner_id}"
