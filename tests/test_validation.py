"""mm_litellm.validation: the request field checks shared by the proxy and the SDK."""

from __future__ import annotations

from typing import Any

import pytest

from mm_litellm.errors import InvalidRequestError, MMLiteLLMError
from mm_litellm.validation import OVERRIDE_FIELDS, check_request

OK = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ([OK], "body", "'body' must be a JSON object, got a list"),
        (
            {**OK, "max_tokens": "ten"},
            "max_tokens",
            "'max_tokens' must be a whole number from 1 to 10000000, got a string",
        ),
        ({**OK, "max_tokens": -5}, "max_tokens", "got -5"),
        ({**OK, "max_tokens": 0}, "max_tokens", "got 0"),
        ({**OK, "max_tokens": True}, "max_tokens", "got a boolean"),
        ({**OK, "n": 1000}, "n", "'n' must be a whole number from 1 to 128, got 1000"),
        (
            {**OK, "prompt_variables": ["x"]},
            "prompt_variables",
            "'prompt_variables' must be a JSON object, got a list",
        ),
        ({**OK, "model": 42}, "model", "'model' must be a string, got an integer"),
        ({**OK, "model": "auto\x00"}, "model", "no control characters"),
        ({**OK, "model": "x" * 300}, "model", "1 to 256 printable characters"),
        ({**OK, "messages": "hi"}, "messages", "'messages' must be a list of messages, got a string"),
        ({**OK, "stream": "yes"}, "stream", "'stream' must be true or false"),
        ({**OK, "temperature": "hot"}, "temperature", "'temperature' must be a number"),
    ],
)
def test_malformed_fields_are_named(body: Any, field: str, text: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_request(body, trusted=True)
    assert info.value.field == field and info.value.status == 400
    assert text in str(info.value)
    assert isinstance(info.value, MMLiteLLMError) and isinstance(info.value, ValueError)


def test_overrides_need_trust_or_an_explicit_allowance() -> None:
    for name in ("api_base", "base_url", "api_key", "model_list", "fallbacks", "mock_response"):
        assert name in OVERRIDE_FIELDS
        body = {**OK, name: "sk-secret-value"}
        with pytest.raises(InvalidRequestError) as info:
            check_request(body, trusted=False)
        assert (info.value.field, info.value.status) == (name, 403)
        assert "sk-secret-value" not in str(info.value)  # a value is never echoed
        check_request(body, trusted=True)
        check_request(body, trusted=False, allowed_overrides=[name])


def test_well_formed_requests_pass() -> None:
    check_request(
        {
            **OK,
            "max_tokens": 10,
            "n": 2,
            "prompt_variables": {"x": 1},
            "api_key": None,
            "metadata": {"priority": "high"},
            "temperature": 0.2,
            "stream": True,
        },
        trusted=False,
    )
    check_request({}, trusted=False)
