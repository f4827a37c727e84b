"""When a group of tasks stops early: a forking tool's join policy, a batch's failure policy.

``Quorum`` and the literals ``"all"`` / ``"first"`` say how many of a forking tool's children
must complete before its parent resumes (``join_count``); ``FailurePolicy`` says how many of a
batch's tasks may fail before the rest are cancelled (``FailurePolicy.tripped``). Both are
checked by the batch workflow (``factorial.workflows._roles``), deterministically, from its
counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from factorial.errors import ToolDefinitionError, UserError

__all__ = ["FailurePolicy", "Join", "Quorum", "join_count"]


@dataclass(frozen=True)
class Quorum:
    """Join a forking tool's children once ``k`` of them have completed.

    Attributes:
        k: How many children must complete (``>= 1``); ``Quorum(1)`` is ``"first"``.
    """

    k: int

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ToolDefinitionError(f"Quorum needs k >= 1, got {self.k!r}")


#: How a forking tool's parent joins its children.
Join = Literal["all", "first"] | Quorum


def join_count(join: object) -> int | None:
    """How many completed children meet ``join``; None for ``"all"`` (every child ends).

    Raises:
        ToolDefinitionError: ``join`` is not ``"all"``, ``"first"`` or a ``Quorum``.
    """
    if join == "all":
        return None
    if join == "first":
        return 1
    if isinstance(join, Quorum):
        return join.k
    raise ToolDefinitionError(f"join must be 'all', 'first' or Quorum(k), got {join!r}")


class FailurePolicy(BaseModel):
    """How many failed tasks a batch tolerates before it cancels the rest and ends ``failed``.

    The batch fails once more than ``max_failed`` of its tasks have failed, or more than
    ``max_failed_ratio`` of all its tasks (failed / total tasks); set either or both.
    ``FailurePolicy(max_failed=0)`` stops at the first failure.

    Attributes:
        max_failed: Failed tasks tolerated (``>= 0``).
        max_failed_ratio: Share of the batch's tasks tolerated failing (``0 <= r < 1``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_failed: int | None = None
    max_failed_ratio: float | None = None

    def __init__(self, **fields: Any) -> None:
        """Check the fields.

        Raises:
            UserError: Neither limit is set, one is out of range or not a number.
        """
        try:
            super().__init__(**fields)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()
            )
            raise UserError(f"invalid FailurePolicy: {problems}") from None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.max_failed is None and self.max_failed_ratio is None:
            raise UserError("FailurePolicy needs max_failed or max_failed_ratio")
        if self.max_failed is not None and self.max_failed < 0:
            raise UserError(f"max_failed must be >= 0, got {self.max_failed}")
        ratio = self.max_failed_ratio
        if ratio is not None and not 0 <= ratio < 1:
            raise UserError(f"max_failed_ratio must be in [0, 1), got {ratio}")
        return self

    def tripped(self, failed: int, total: int) -> str | None:
        """Why a batch of ``total`` tasks, ``failed`` of them failed, must stop; None: go on."""
        if self.max_failed is not None and failed > self.max_failed:
            tasks = "task" if failed == 1 else "tasks"
            return f"{failed} {tasks} failed, more than max_failed={self.max_failed}"
        ratio = self.max_failed_ratio
        if ratio is not None and total and failed / total > ratio:
            return f"{failed} of {total} tasks failed, more than max_failed_ratio={ratio:g}"
        return None
