"""``TokenUsage``: the tokens a model call, a turn, a task or a batch used, and their cost.

Pure pydantic: the workflows sum it (a task's turns and sub-agents, a batch's tasks), the
turn activity fills it from the model's answer and the model's prices.
"""

from __future__ import annotations

from pydantic import BaseModel, computed_field

__all__ = ["TokenUsage"]


class TokenUsage(BaseModel):
    """Tokens used, and what they cost where the model has prices.

    Add two with ``+``; ``sum(usages, TokenUsage())`` adds many. A dict with the provider's
    fields (``{"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}``) validates
    as one; ``total_tokens`` is always the sum of the two counts.

    Attributes:
        prompt_tokens: Tokens sent to the model (its input).
        completion_tokens: Tokens the model produced (its output).
        cost: What they cost, in the currency of the model's prices (``Model.with_prices``);
            None where no price is known. A sum's cost adds the costs that are known.

    Example::

        usage = TokenUsage(prompt_tokens=1_000, completion_tokens=200)
        (usage + usage).total_tokens  # 2400
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom
    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        """The sum of two usages (a cost is None only if both are)."""
        if not isinstance(other, TokenUsage):
            return NotImplemented
        costs = [c for c in (self.cost, other.cost) if c is not None]
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=round(sum(costs), 10) if costs else None,
        )

    def __radd__(self, other: object) -> TokenUsage:
        """Let ``sum(usages)`` start from 0."""
        if other == 0:
            return self
        return NotImplemented
