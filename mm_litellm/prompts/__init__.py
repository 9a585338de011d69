"""Prompt registry: versioned templates (files and database), labels, safe rendering, A/B tests.

``PromptRegistry`` lives in :mod:`mm_litellm.prompts.registry` (it loads SQLModel). The core
works without LiteLLM; :mod:`mm_litellm.integrations.prompt_manager` plugs it into LiteLLM's
prompt management, and :mod:`mm_litellm.gateway` renders before routing.
"""

from __future__ import annotations

from mm_litellm.prompts.errors import (
    PromptError,
    PromptNotFoundError,
    PromptStoreError,
    RenderError,
    TemplateSyntaxError,
)
from mm_litellm.prompts.template import CompiledPrompt, Message, ModelParams, PromptVersion, RenderedPrompt

__all__ = [
    "CompiledPrompt",
    "Message",
    "ModelParams",
    "PromptError",
    "PromptNotFoundError",
    "PromptStoreError",
    "PromptVersion",
    "RenderError",
    "RenderedPrompt",
    "TemplateSyntaxError",
]
