"""Request features read from LiteLLM-style arguments."""

from __future__ import annotations

from mm_litellm.routing.features import estimate_tokens, extract_features


def test_estimate_tokens_counts_text_parts_and_sees_images() -> None:
    messages = [
        {"role": "system", "content": "x" * 40},
        {
            "role": "user",
            "content": [{"type": "text", "text": "y" * 80}, {"type": "image_url", "image_url": {}}],
        },
    ]
    assert estimate_tokens(messages) == (40 // 4 * 0 + 120 // 4 + 8, 2, True)
    assert estimate_tokens(None) == (0, 0, False)


def test_extract_features_reads_tools_json_metadata_and_user() -> None:
    f = extract_features(
        "auto",
        [{"role": "user", "content": "hi"}],
        {
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_object"},
            "stream": True,
            "max_tokens": 99,
            "metadata": {
                "priority": "high",
                "team": "t1",
                "tags": ["a"],
                "budget_mode": True,
                "latency_critical": False,
                "preferred_model": "big",
            },
            "user": "u1",
        },
    )
    assert (f.has_tools, f.json_mode, f.stream, f.max_tokens) == (True, True, True, 99)
    assert (f.priority, f.team, f.tags, f.user, f.budget_mode, f.preferred_model) == (
        "high",
        "t1",
        ("a",),
        "u1",
        True,
        "big",
    )
    assert f.as_dict()["metadata"]["team"] == "t1"


def test_user_falls_back_to_metadata_and_pydantic_response_format() -> None:
    class Answer:  # a pydantic model class passed as response_format means JSON
        pass

    f = extract_features("auto", [], {"metadata": {"user": "m"}, "response_format": Answer})
    assert (f.user, f.json_mode, f.input_tokens) == ("m", True, 0)
