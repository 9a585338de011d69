"""The one exception evaluation raises for bad input: a dataset, a mapping, a knob or a price."""

from __future__ import annotations

from mm_litellm.errors import MMLiteLLMError

__all__ = ["EvaluationError"]


class EvaluationError(MMLiteLLMError, ValueError):
    """Evaluation input is unusable; the message says what, where (file:line, option) and what is allowed."""
