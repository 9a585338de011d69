"""Fusion: JSON answers merged field by field; invalid JSON counts as a failed member."""

from __future__ import annotations

import json

import litellm
import pytest

import mm_litellm
from mm_litellm import decision_of
from mm_litellm.ensemble.fusion import merge
from tests.ensemble.conftest import ENSEMBLE_POLICY

Q = [{"role": "user", "content": "Extract name, price and rating as JSON"}]


def test_fields_take_the_majority_with_provenance(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", '{"name": "Lamp", "price": "$49.99", "rating": 4.5}')
    mm_mock.script("flash", '```json\n{"name": "Lamp", "price": "$45.00"}\n```')
    mm_mock.script("haiku", '{"name": "Desk lamp", "price": "$49.99", "rating": 4.5, "stock": 3}')
    response = mm_litellm.completion(model="ensemble/fuse", messages=Q)
    assert json.loads(response.choices[0].message.content) == {
        "name": "Lamp",
        "price": "$49.99",
        "rating": 4.5,
        "stock": 3,
    }
    fields = decision_of(response)["ensemble"]["fields"]
    assert fields["price"] == {
        "value": "$49.99",
        "members": ["mini", "haiku"],
        "share": pytest.approx(2 / 3),
        "alternatives": [{"value": "$45.00", "members": ["flash"]}],
    }
    assert fields["rating"]["members"] == ["mini", "haiku"] and fields["rating"]["share"] == 1.0
    assert fields["stock"] == {"value": 3, "members": ["haiku"], "share": 1.0, "alternatives": []}


def test_invalid_json_is_a_failed_member(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", '{"name": "Lamp"}')
    mm_mock.script("flash", "The name is Lamp.")
    mm_mock.script("haiku", '{"name": "Lamp"}')
    details = decision_of(mm_litellm.completion(model="ensemble/fuse", messages=Q))["ensemble"]
    assert details["invalid_json"] == ["flash"]
    assert details["failures"] == {
        "flash": {"error_class": "InvalidJSON", "error": "the answer is not valid JSON"}
    }
    assert details["fields"]["name"]["members"] == ["mini", "haiku"]
    assert details["confidence"] == 1.0


def test_too_many_invalid_answers_lose_the_quorum(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", '{"name": "Lamp"}')
    mm_mock.script("flash", "[1, 2]")
    mm_mock.script("haiku", "{oops")
    with pytest.raises(litellm.ServiceUnavailableError) as info:
        mm_litellm.completion(model="ensemble/fuse", messages=Q)
    assert (
        "quorum lost: 1 of 3 members gave a usable answer, 2 needed; mini (mini): answered; "
        "flash (flash): InvalidJSON: the answer is JSON list, not an object; "
        "haiku (haiku): InvalidJSON: the answer is not valid JSON"
    ) in str(info.value)


def test_weight_by_the_answers_own_confidence(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY)
    mm_mock.script("mini", '{"price": 10, "confidence": 0.3}')
    mm_mock.script("flash", '{"price": 12, "confidence": 0.9}')
    details = decision_of(mm_litellm.completion(model="ensemble/fuse-conf", messages=Q))["ensemble"]
    assert details["fields"]["price"]["value"] == 12
    assert details["fields"]["price"]["share"] == pytest.approx(0.75)


def test_merge_ties_go_to_the_first_member() -> None:
    merged, provenance = merge([("a", {"x": 1}, 1.0), ("b", {"x": 2}, 1.0)])
    assert merged == {"x": 1}
    assert provenance["x"]["share"] == 0.5
