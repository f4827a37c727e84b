"""``Budget``: the most tokens, cost and turns a task, or a whole batch, may spend.

Pure pydantic: workflows import it. How a budget is enforced across a tree of agents:

* A task checks its budget at each turn boundary (after a turn, and after its sub-agents'
  batches have ended), against its usage so far: its own turns' tokens and its sub-agents'
  (at any depth, as each sub-agent batch hands its usage back). Spent reaches a limit and the
  task is not done: it fails with ``BudgetExceeded``.
* A task's sub-agent batch is started with the task's *remaining* tokens and cost as its
  batch budget, and each task of a batch with a budget gets the batch's remaining tokens and
  cost (as they stand when it starts) as a budget of its own. So each level stops itself, and
  no subtree can spend more than what its ancestors had left.
* A batch with a budget has each task signal its usage so far (and its turns) after every
  turn (``task_usage``, sent from the task workflow, so recorded once in history, and absolute,
  so a repeat is harmless). The batch sums its running tasks' latest reports and its ended
  tasks' final usage; once that reaches a limit it cancels its running tasks (and through them
  their sub-agents), starts no more, and ends ``failed`` with ``BudgetExceeded``.

A killed worker's unrecorded turn never counts: usage is only what the workflows recorded.
``turns`` counts a task's own turns (a batch: its tasks' turns); ``tokens`` and ``cost`` count
the whole tree. A check runs at a turn boundary, so a budget may be overrun by the turns
running when it is reached, never by a turn that starts after.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from factorial._usage import TokenUsage
from factorial.errors import UserError

__all__ = ["BUDGET_EXCEEDED", "Budget"]

#: The prefix of a run's or a batch's error when its budget stopped it.
BUDGET_EXCEEDED = "BudgetExceeded"


class Budget(BaseModel):
    """Limits on what a task (with its sub-agents) or a batch may spend; None: no limit.

    Attributes:
        tokens: Most prompt and completion tokens, sub-agents' included.
        cost: Most cost, in the currency of the models' prices (``Model.with_prices``);
            calls to a model without prices cost nothing here.
        turns: Most turns of the task itself (of a batch: of its tasks together).

    Example::

        Agent(name="researcher", budget=Budget(tokens=50_000, turns=20))
    """

    model_config = ConfigDict(frozen=True)

    tokens: int | None = Field(default=None, ge=1)
    cost: float | None = Field(default=None, gt=0)
    turns: int | None = Field(default=None, ge=1)

    def exceeded(self, usage: TokenUsage, turns: int) -> str | None:
        """Why ``usage`` and ``turns`` leave no room for another turn; None if they do."""
        if self.tokens is not None and usage.total_tokens >= self.tokens:
            return f"used {usage.total_tokens} tokens of a budget of {self.tokens}"
        if self.cost is not None and usage.cost is not None and usage.cost >= self.cost:
            return f"spent {usage.cost:g} of a budget of {self.cost:g}"
        if self.turns is not None and turns >= self.turns:
            return f"ran {turns} turns of a budget of {self.turns}"
        return None

    def error(self, usage: TokenUsage, turns: int) -> str | None:
        """The run's or batch's error if the budget is spent (``BudgetExceeded: ...``)."""
        why = self.exceeded(usage, turns)
        return f"{BUDGET_EXCEEDED}: {why}" if why is not None else None

    def remaining(self, usage: TokenUsage) -> Budget | None:
        """The tokens and cost left after ``usage``, for what runs below (None: no limit).

        Turns are a task's own (or a batch's tasks'), so they are not handed down.
        """
        tokens = None if self.tokens is None else max(1, self.tokens - usage.total_tokens)
        cost = None
        if self.cost is not None:
            cost = max(1e-9, round(self.cost - (usage.cost or 0.0), 10))
        if tokens is None and cost is None:
            return None
        return Budget(tokens=tokens, cost=cost)

    def within(self, other: Budget | None) -> Budget:
        """The tighter of this budget and ``other``, limit by limit."""
        if other is None:
            return self

        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        tokens, turns = low(self.tokens, other.tokens), low(self.turns, other.turns)
        return Budget(
            tokens=None if tokens is None else int(tokens),
            cost=low(self.cost, other.cost),
            turns=None if turns is None else int(turns),
        )


def tighter(a: Budget | None, b: Budget | None) -> Budget | None:
    """The tighter of two optional budgets (None where neither limits)."""
    if a is None:
        return b
    return a.within(b)


def checked_budget(budget: object) -> Budget | None:
    """``budget`` if it is a ``Budget`` or None.

    Raises:
        UserError: It is something else.
    """
    if budget is not None and not isinstance(budget, Budget):
        raise UserError("budget must be a factorial.Budget")
    return budget
