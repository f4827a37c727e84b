"""Temporal activity definitions: all I/O (model calls, tools, hooks, publishing) happens here."""

from factorial.activities.turn import AgentActivities

__all__ = ["AgentActivities"]
