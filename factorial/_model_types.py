"""What one model call exchanges: ``ModelRequest``, ``ModelResponse`` and ``ToolCall``.

A module of their own so that the model catalog (``factorial.models``, which re-exports
them) and the OpenAI client (``factorial._openai``) both use them without importing each
other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from factorial._usage import TokenUsage


class ToolCall(BaseModel):
    """One tool call requested by the model.

    Attributes:
        id: The provider's id for the call; tool results refer to it.
        name: The tool's name.
        arguments: The arguments as the raw JSON string the model produced.
    """

    id: str
    name: str
    arguments: str


class ModelRequest(BaseModel):
    """Everything needed for one model call.

    Attributes:
        messages: The full OpenAI chat messages, including the system prompt.
        tools: OpenAI tool schemas (``{"type": "function", "function": {...}}``).
        settings: Resolved keyword arguments such as ``temperature`` or ``tool_choice``.
        timeout: Seconds to wait for the provider's answer.
        task_id: The task making the call.
        turn: The turn number being run.
        attempt: Which attempt of this turn this is (1 on the first try).
    """

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    timeout: float = 120.0
    task_id: str = ""
    turn: int = 0
    attempt: int = 1


class ModelResponse(BaseModel):
    """The model's answer to one request.

    Attributes:
        content: The text answer, if any.
        tool_calls: Tool calls the model requested, in order.
        finish_reason: Why the model stopped (``"stop"``, ``"tool_calls"``, ``"length"``, ...).
        usage: Token usage as the provider reported it (a dict of the provider's fields
            validates); None if it reported none.
        model: The name of the model that answered (``BaseAgent.completion`` sets it).
    """

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    model: str | None = None

    def assistant_message(self) -> dict[str, Any]:
        """Return this answer as an OpenAI assistant chat message."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message
