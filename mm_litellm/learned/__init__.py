"""Learned routing: predict each model's quality from the prompt, pay for a better model only where it helps.

- ``mm-litellm router train`` (:func:`mm_litellm.learned.train.train_router`, needs the ``learn``
  extra) fits a router on recorded outcomes and writes a portable artifact;
- :func:`mm_litellm.learned.artifact.load_router` reads one safely (JSON + ``.npz``, no pickle);
- a policy route with ``strategy: learned`` uses it (:mod:`mm_litellm.learned.strategy`).

Deciding needs numpy only; a router trained with embeddings (``--embeddings MODEL``, off by
default) also reads each prompt's embedding (:mod:`mm_litellm.learned.embeddings`), fetched
through LiteLLM for a live request. Docs: ``docs/routing.md`` ("Learned routing").
"""

from __future__ import annotations

__all__ = ["ArtifactError", "Router", "load_router"]


def __getattr__(name: str) -> object:  # numpy is imported only when a router is used
    if name in __all__:
        from mm_litellm.learned import artifact

        return getattr(artifact, name)
    raise AttributeError(name)
