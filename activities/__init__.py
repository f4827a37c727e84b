"""Temporal activity definitions: all I/O (model calls, tools, hooks, publishing) happens here."""

from activities.turn import AgentActivities

__all__ = ["AgentActivities"]
