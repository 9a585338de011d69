"""mm_litellm.completion is litellm.completion when the policy does not name the model.

The same mocked calls go through both; types, fields, contents and errors must agree, with no
policy at all and with a policy active that names other models.
"""

from __future__ import annotations

from typing import Any

import litellm
import pytest

import mm_litellm
from tests.conftest import TEST_POLICY

MODEL = "openai/gpt-4o-mini"
USER = [{"role": "user", "content": "What is 2+2?"}]
TOOL_CALLS = [
    {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 2}'}}
]
TOOLS = [
    {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}
]

CASES: dict[str, dict[str, Any]] = {
    "text": {"mock_response": "4"},
    "usage": {"mock_response": "4", "max_tokens": 5, "temperature": 0},
    "tools": {"mock_tool_calls": TOOL_CALLS, "tools": TOOLS},
    "n2": {"mock_response": "4", "n": 2},
}
VOLATILE = {"id", "created", "system_fingerprint"}


@pytest.fixture(params=["no-policy", "other-policy"])
def setup(request: pytest.FixtureRequest) -> None:
    if request.param == "other-policy":
        mm_litellm.configure(mm_litellm.parse_policy(TEST_POLICY))


def shape(response: Any) -> dict[str, Any]:
    dumped = response.model_dump()
    return {k: v for k, v in dumped.items() if k not in VOLATILE} | {"type": type(response)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sync_same_response(setup: None, case: str) -> None:
    ours = mm_litellm.completion(model=MODEL, messages=USER, **CASES[case])
    theirs = litellm.completion(model=MODEL, messages=USER, **CASES[case])
    assert shape(ours) == shape(theirs)
    assert ours._hidden_params["response_cost"] == theirs._hidden_params["response_cost"]
    assert mm_litellm.decision_of(ours) is None


@pytest.mark.parametrize("case", sorted(CASES))
async def test_async_same_response(setup: None, case: str) -> None:
    ours = await mm_litellm.acompletion(model=MODEL, messages=USER, **CASES[case])
    theirs = await litellm.acompletion(model=MODEL, messages=USER, **CASES[case])
    assert shape(ours) == shape(theirs)


def test_positional_messages(setup: None) -> None:
    ours = mm_litellm.completion(MODEL, USER, mock_response="4")
    theirs = litellm.completion(MODEL, USER, mock_response="4")
    assert shape(ours) == shape(theirs)


def chunks(stream: Any) -> list[tuple[type, str | None, str | None]]:
    return [(type(c), c.choices[0].delta.content, c.choices[0].finish_reason) for c in stream if c.choices]


def test_streaming_same_chunks(setup: None) -> None:
    ours = mm_litellm.completion(
        model=MODEL, messages=USER, mock_response="two plus two is four", stream=True
    )
    theirs = litellm.completion(model=MODEL, messages=USER, mock_response="two plus two is four", stream=True)
    assert type(ours) is type(theirs)
    assert chunks(ours) == chunks(theirs)


async def test_async_streaming_same_chunks(setup: None) -> None:
    ours = await mm_litellm.acompletion(model=MODEL, messages=USER, mock_response="a b c", stream=True)
    theirs = await litellm.acompletion(model=MODEL, messages=USER, mock_response="a b c", stream=True)
    assert type(ours) is type(theirs)
    assert [c.choices[0].delta.content async for c in ours] == [
        c.choices[0].delta.content async for c in theirs
    ]


@pytest.mark.parametrize(
    "mock", ["litellm.RateLimitError", "litellm.ContextWindowExceededError", "litellm.InternalServerError"]
)
def test_same_exception(setup: None, mock: str) -> None:
    with pytest.raises(Exception) as ours:
        mm_litellm.completion(model=MODEL, messages=USER, mock_response=mock)
    with pytest.raises(Exception) as theirs:
        litellm.completion(model=MODEL, messages=USER, mock_response=mock)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
    assert ours.value.status_code == theirs.value.status_code  # type: ignore[attr-defined]


async def test_same_async_exception(setup: None) -> None:
    with pytest.raises(litellm.RateLimitError):
        await mm_litellm.acompletion(model=MODEL, messages=USER, mock_response="litellm.RateLimitError")
