"""``fallback_models``: a model that moves to the next one each time a turn is retried.

A turn's attempt (``agent_ctx.attempt``, ``ModelRequest.attempt``) starts at 1 and grows
each time Temporal retries the turn. Attempt 1 uses the first model, attempt 2 the
second, and so on; every later attempt stays on the last. ``Model.for_attempt`` is how
``BaseAgent.completion`` picks the concrete model, so the model's name goes into the
turn's ``progress_update_completion_*`` events and its prices into the turn's usage.
``factorial.models`` re-exports both names.
"""

from __future__ import annotations

from factorial._model_types import ModelRequest, ModelResponse
from factorial.errors import UserError
from factorial.models import Model, ModelClients


class FallbackModel(Model):
    """Models tried in order, one per attempt of a turn (see ``fallback_models``).

    Attributes:
        models: The models, first to last (a nested fallback's models in its place).
    """

    def __init__(self, models: tuple[Model, ...]) -> None:
        if len(models) < 2 or not all(isinstance(m, Model) for m in models):
            raise UserError("fallback_models takes two or more Model objects")
        flat = tuple(
            inner for model in models for inner in getattr(model, "models", None) or (model,)
        )
        name = "fallback(" + ", ".join(m.name for m in flat) + ")"
        super().__init__(
            name=name,
            provider="fallback",
            provider_model_id=name,
            context_window=min(m.context_window for m in flat),
        )
        self.models: tuple[Model, ...] = flat

    def for_attempt(self, attempt: int) -> Model:
        """The model for ``attempt`` (1 is the first); the last one once they run out."""
        return self.models[min(max(attempt, 1), len(self.models)) - 1]

    async def complete(self, request: ModelRequest, clients: ModelClients) -> ModelResponse:
        """Complete ``request`` with the model for its attempt, priced at that model's prices."""
        model = self.for_attempt(request.attempt)
        response = await model.complete(request, clients)
        if response.usage is not None:
            response.usage = model.priced(response.usage)
        return response


def fallback_models(primary: Model, secondary: Model, *more: Model) -> Model:
    """A model that answers with ``primary``, and with the next model on each retry.

    Attempt 1 of a turn uses ``primary``, attempt 2 ``secondary``, and so on; later
    attempts stay on the last model. A turn is retried after a retryable model error
    (429, 5xx, an unusable answer) or a lost regular-activity turn.

    Example::

        agent = Agent(model=fallback_models(gpt_41_mini, claude_4_sonnet))

    Raises:
        UserError: An argument is not a ``Model``.
    """
    return FallbackModel((primary, secondary, *more))
