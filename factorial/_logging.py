"""Worker logs: a line per task start and end and per failed turn attempt; tracebacks at DEBUG.

The task workflow logs its start and its end (with the outcome) through ``workflow.logger``,
which stays silent during replay, so each appears once however often a task is replayed.
The SDK logs every failed activity attempt at WARNING with its whole traceback, twice over
when the error has a cause (ours always does: the provider's error under the mapped one).
``TurnFailureLog`` rewrites those records for Factorial's activities into one line (what,
task, attempt, error) and sends the traceback to the ``factorial.worker`` logger at DEBUG.
"""

from __future__ import annotations

import logging
import sys

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from factorial._wire import PUBLISH_EVENTS_ACTIVITY, RUN_HOOK_ACTIVITY, RUN_TURN_ACTIVITY

_OURS = {RUN_TURN_ACTIVITY: "turn", RUN_HOOK_ACTIVITY: "hook", PUBLISH_EVENTS_ACTIVITY: "publish"}
_SDK_LOGGER = "temporalio.activity"
_debug = logging.getLogger("factorial.worker")

#: The format of ``factorial worker``'s log lines (on stderr).
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TurnFailureLog(logging.Filter):
    """Shortens the SDK's "Completing activity as failed" records of Factorial's activities."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (never drops one)."""
        info = getattr(record, "temporal_activity", None)
        if not record.exc_info or not isinstance(info, dict):
            return True
        what = _OURS.get(info.get("activity_type", ""))
        if what is None or not str(record.msg).startswith("Completing activity as failed"):
            return True
        error = record.exc_info[1]
        _debug.debug(
            "traceback of the failed %s of %s",
            what,
            info.get("workflow_id"),
            exc_info=record.exc_info,
        )
        record.msg = "%s of task %s failed (attempt %s): %s"
        record.args = (what, info.get("workflow_id"), info.get("attempt"), _one_line(error))
        record.exc_info = None
        record.exc_text = None
        return True


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return "error"
    kind = type(error).__name__
    if isinstance(error, ApplicationError):
        kind, text = error.type or kind, error.message
    else:
        text = str(error)
    return f"{kind}: {' '.join(text.split())[:500]}"


def install_turn_failure_log() -> None:
    """Attach ``TurnFailureLog`` to the SDK's activity logger (once per process)."""
    logger = logging.getLogger(_SDK_LOGGER)
    if not any(isinstance(f, TurnFailureLog) for f in logger.filters):
        logger.addFilter(TurnFailureLog())


def configure_worker_logging(level: str) -> None:
    """Log to stderr at ``level``, one line per record (``factorial worker --log-level``).

    Factorial's workflow lines name their task themselves, so the SDK's workflow logger
    stops appending its dictionary of workflow details to each message.
    """
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    workflow.logger.workflow_info_on_message = False
    install_turn_failure_log()
