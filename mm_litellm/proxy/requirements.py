"""Is LiteLLM's proxy server installed? (the ``mm-litellm[proxy]`` extra), answered without importing it.

The base install (``pip install mm-litellm``) carries the SDK and the Router on any supported
LiteLLM; the proxy server needs LiteLLM's ``[proxy]`` extra (FastAPI, uvicorn, ...). This reads
the requirements LiteLLM's own metadata declares for that extra and reports the missing ones, so
``mm-litellm proxy`` can say what to install instead of failing inside ``litellm``.
"""

from __future__ import annotations

import re
from importlib import metadata

__all__ = ["INSTALL_HINT", "missing_proxy_requirements"]

INSTALL_HINT = "pip install 'mm-litellm[proxy]'"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PROXY_EXTRA = re.compile(r"""extra\s*==\s*["']proxy["']""")


def missing_proxy_requirements() -> list[str]:
    """Names of the distributions LiteLLM's ``[proxy]`` extra needs that are not installed."""
    try:
        requires = metadata.requires("litellm") or []
    except metadata.PackageNotFoundError:
        return ["litellm"]
    missing: list[str] = []
    for requirement in requires:
        spec, _, marker = requirement.partition(";")
        if not _PROXY_EXTRA.search(marker) or ("win32" in marker and "!=" not in marker):
            continue
        match = _NAME.match(spec)
        if match is None:
            continue
        try:
            metadata.distribution(match.group(1))
        except metadata.PackageNotFoundError:
            if match.group(1) not in missing:
                missing.append(match.group(1))
    return missing
