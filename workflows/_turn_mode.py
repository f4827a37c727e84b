"""Whether a task's next turn runs as a local activity or a regular one.

A regular activity costs two server round trips per turn (schedule, then complete) and six
history events. A local activity runs inside the workflow task that scheduled it and is
recorded as one marker, so a task of quick turns needs about one round trip per turn. The
price: while a local turn runs, the workflow task is held open, and cancellation, queries,
updates and signals reach the workflow only when it ends or when the worker heartbeats
the workflow task (every 8 s with the 10 s workflow-task timeout); only a cancel reaches the
turn sooner, because the turn watches for it (``factorial.activities.interruption``, one
server call a second). A long turn is therefore better as a regular activity, which Temporal
cancels through its heartbeat within about a second.

``AgentWorkerConfig.turn_execution``:

* ``activity``: every turn is a regular, heartbeated activity.
* ``local``: every turn is a local activity.
* ``auto`` (the default): the first turn is local; every later turn is local if the previous
  turn ran for less than ``LOCAL_TURN_SECONDS``, else regular. The workflow decides from the
  previous turn's duration, which the turn itself measured and returned, so the choice is
  recorded in history and replays the same. A model that answers in milliseconds keeps local
  turns; one whose turns take 20 s pays one long local turn, then runs regular activities
  (and goes back to local turns once a turn is quick again).

Why 2 s: a local turn shorter than that ends before a cancel could reach it any faster as a
regular activity (its heartbeat is throttled to one or two seconds), so it loses nothing;
and at that length the round trip a local turn saves (a few milliseconds on a busy
server; W(1000 tasks x 3 turns) took 16 s with local turns against 32 s with regular ones on
one 2-core dev server) no longer matters next to the turn itself.

Local turns chain inside one workflow task: the workflow sees nothing new (a steering
update, a cancel, a query) until that task ends, and their results reach history together
when it does. So before the next turn the workflow ends its workflow task (a 1 ms timer)

* after a local turn of at least ``BOUNDARY_SECONDS``: steering sent during a turn is then
  applied at the next turn boundary in every mode. Between quicker local turns the boundary
  is skipped: it would cost about as much as the turn, and whatever arrives meanwhile is
  seen when the chain ends;
* once the chain's results add up to ``BOUNDARY_BYTES``: the workflow task's completion,
  which carries them, stays far below gRPC's 4 MiB message limit (a result is at most
  2 MiB).

``UnrecordedTurns`` counts those bytes, so that the task's continue-as-new threshold also
counts results not yet in history.

A local turn retries within its workflow task while the backoff is under
``LOCAL_TURN_SECONDS``; a longer backoff becomes a durable timer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from factorial._wire import TurnExecution

#: A turn shorter than this runs locally next time in ``auto`` mode.
LOCAL_TURN_SECONDS = 2.0
#: A local turn at least this long ends its workflow task before the next turn.
BOUNDARY_SECONDS = 0.25
#: Local turn results that one workflow task completion may carry before the next turn.
BOUNDARY_BYTES = 1024 * 1024
#: The timer that ends it.
BOUNDARY = timedelta(milliseconds=1)
#: Local retries whose backoff is longer than this wait on a timer instead.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=LOCAL_TURN_SECONDS)


def next_turn_is_local(mode: TurnExecution, last_turn_seconds: float | None) -> bool:
    """Whether the next turn runs as a local activity.

    Args:
        mode: The agent's ``turn_execution``.
        last_turn_seconds: How long the task's previous turn ran, or None before its first
            (and after a continue-as-new).
    """
    if mode != "auto":
        return mode == "local"
    return last_turn_seconds is None or last_turn_seconds < LOCAL_TURN_SECONDS


class UnrecordedTurns:
    """Bytes of local turn results not yet in history (recorded when the workflow task ends).

    A workflow task that ended shows as a change of the history size the workflow sees.
    """

    def __init__(self) -> None:
        self._history_size = -1
        self.bytes = 0

    def add(self, history_size: int, encoded_bytes: int) -> None:
        """Count one local turn's result; ``history_size`` is the size the workflow sees."""
        self._forget_recorded(history_size)
        self.bytes += encoded_bytes

    def history_size(self, history_size: int) -> int:
        """The history's size once the workflow task's unrecorded results are in it."""
        self._forget_recorded(history_size)
        return history_size + self.bytes

    def needs_boundary(self, history_size: int) -> bool:
        """Whether the chain's results are large enough to end the workflow task now."""
        self._forget_recorded(history_size)
        return self.bytes >= BOUNDARY_BYTES

    def _forget_recorded(self, history_size: int) -> None:
        if history_size != self._history_size:
            self._history_size, self.bytes = history_size, 0
