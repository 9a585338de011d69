"""The LiteLLM proxy callback: ``litellm_settings.callbacks: [mm_litellm.proxy.hooks.proxy_handler]``.

One ``CustomLogger`` subclass whose hooks call into mm_litellm:

- ``async_pre_call_hook``: :func:`mm_litellm.proxy.precall.prepare_request` (identity, prompt,
  routing, budget); a refusal becomes LiteLLM's ``ProxyException``, so the client gets the
  status (400, 403, 429) and an OpenAI-style JSON error with mm_litellm's details.
- ``async_post_call_failure_hook``: the budget reservation of a failed call is given back
  (the ledger callback settles successful ones from LiteLLM's success event).
- ``async_post_call_success_hook``: confidence escalation along the route's chain
  (:mod:`mm_litellm.proxy.escalate`); the most confident answer is what the client gets.
- ``async_post_call_response_headers_hook``: the decision as ``x-mm-*`` response headers.

LiteLLM's proxy runs a hook only when the class defines it in its own body (an inherited one
is skipped), so every hook is declared here. Importing this module imports LiteLLM: only the
proxy imports it. Creating :data:`proxy_handler` loads nothing; the policy is read on the
first request (``MM_LITELLM_POLICY``).
"""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from mm_litellm.proxy.budget import release
from mm_litellm.proxy.escalate import escalate_response
from mm_litellm.proxy.headers import decision_headers
from mm_litellm.proxy.precall import RequestRefused, prepare_request

__all__ = ["ProxyHandler", "proxy_handler"]


class ProxyHandler(CustomLogger):
    """mm_litellm's policy in the LiteLLM proxy."""

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        try:
            return await prepare_request(user_api_key_dict, data, str(call_type))
        except RequestRefused as exc:
            raise proxy_exception(exc) from exc

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        if response is None:  # LiteLLM answered nothing (its drop_params retry of a 422 ends so)
            release(data)
            raise proxy_exception(
                RequestRefused(
                    422,
                    "the upstream refused the request as unprocessable (422), also after LiteLLM "
                    "dropped the parameters it could; check the request's parameters against the model",
                    kind="invalid_request_error",
                    code="unprocessable_entity",
                )
            )
        return await escalate_response(data, response)

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> Any:
        release(request_data)  # a failed call gives its budget reservation back
        return None

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        return decision_headers(data, response, litellm_call_info)


def proxy_exception(exc: RequestRefused) -> Exception:
    """LiteLLM's ``ProxyException`` for a refusal: ``{"error": {message, type, param, code, ...}}``."""
    from litellm.proxy._types import ProxyException

    return ProxyException(
        message=exc.message,
        type=exc.kind,
        param=exc.param,
        code=exc.status,
        openai_code=exc.code,
        provider_specific_fields={"mm_litellm": exc.details} if exc.details else None,
    )


proxy_handler = ProxyHandler()
"""The instance the proxy config names."""
