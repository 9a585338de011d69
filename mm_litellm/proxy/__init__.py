"""mm_litellm in LiteLLM's proxy server: custom auth, the pre-call hook, response headers, config.

Nothing here is imported by ``import mm_litellm``; LiteLLM's proxy imports
``mm_litellm.proxy.hooks`` and ``mm_litellm.proxy.auth`` by the names in its config
(see ``config/proxy.yaml`` and docs/proxy.md).
"""
