"""Versions from files and the database, labels, promotion and rollback with history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mm_litellm.policy.prompts import PromptsSettings
from mm_litellm.prompts.errors import PromptError, PromptNotFoundError, PromptStoreError, TemplateSyntaxError
from mm_litellm.prompts.files import load_prompt_dir
from tests.conftest import ROOT


def test_seed_prompts_load_and_render() -> None:
    files = load_prompt_dir(ROOT / "config" / "prompts")
    assert set(files.versions) >= {"extraction", "reasoning"}
    assert files.labels["extraction"] == {"production": 1, "staging": 2}
    rendered = files.versions["reasoning"][1].render(
        {"goal": "price", "url": "u", "actions": ["click"], "history": []}
    )
    assert "Current goal: price" in rendered.messages[0]["content"]
    assert 'Available actions: ["click"]' in rendered.messages[0]["content"]
    v1 = (
        files.versions["extraction"][1]
        .render({"target_fields": "price", "html_content": "<p>"})
        .messages[0]["content"]
    )
    assert '{\n  "field1": "value1",' in v1  # the seed's JSON example survives as literal braces


def test_get_by_version_label_default_and_latest(make_registry: Any) -> None:
    reg = make_registry()
    assert reg.ids() == ["qa"]
    assert list(reg.versions("qa")) == [1, 2]
    assert reg.get("qa").spec.version == 1  # default label: production
    assert reg.get("qa", version=2).spec.version == 2
    assert reg.get("qa", label="production").spec.version == 1
    no_default = make_registry(PromptsSettings(default_label="live"))
    assert no_default.get("qa").spec.version == 2  # no such label: the latest version


def test_lookup_errors_name_what_exists(make_registry: Any) -> None:
    reg = make_registry()
    with pytest.raises(PromptNotFoundError, match=r"unknown prompt 'nope'; known: qa"):
        reg.get("nope")
    with pytest.raises(PromptNotFoundError, match=r"prompt 'qa' has no version 9; versions: 1, 2"):
        reg.get("qa", version=9)
    with pytest.raises(PromptNotFoundError, match=r"prompt 'qa' has no label 'beta'; labels: production"):
        reg.get("qa", label="beta")


def test_create_version_numbers_after_files_and_refuses_unsafe_templates(make_registry: Any) -> None:
    reg = make_registry()
    spec = reg.create_version(
        "qa",
        [{"role": "user", "content": "{{ question }}?"}],
        ["question"],
        params={"temperature": 0},
        created_by="ana",
    )
    assert (spec.version, spec.created_by, spec.source) == (3, "ana", "database")
    assert reg.get("qa", version=3).render({"question": "why"}).messages[0]["content"] == "why?"
    with pytest.raises(
        TemplateSyntaxError, match=r"prompt 'qa' v4 messages\[0\] \(user\): '\{\{ question.upper \}\}'"
    ):
        reg.create_version("qa", [{"role": "user", "content": "{{ question.upper }}"}], ["question"])
    assert list(reg.versions("qa")) == [1, 2, 3]  # nothing stored for the refused one
    new = reg.create_version("fresh", [{"role": "user", "content": "hi"}])
    assert new.version == 1 and "fresh" in reg.ids()


def test_versions_are_shared_through_the_database(make_registry: Any) -> None:
    a, b = make_registry(), make_registry()
    a.create_version("qa", [{"role": "user", "content": "v3 {{ question }}"}], ["question"])
    assert b.get("qa", version=3).spec.messages[0].content == "v3 {{ question }}"


def test_promotion_and_rollback_are_recorded_with_who_and_when(make_registry: Any) -> None:
    reg = make_registry()
    promoted = reg.set_label("qa", "production", 2, by="ana", note="v2 wins")
    assert (promoted.from_version, promoted.to_version, promoted.by) == (1, 2, "ana")
    assert reg.get("qa").spec.version == 2
    assert reg.set_label("qa", "production", 2, by="ana") is None  # already there: no event
    rolled = reg.set_label("qa", "production", 1, by="bo", note="rollback")
    assert (rolled.from_version, rolled.to_version) == (2, 1)
    assert reg.get("qa").spec.version == 1
    history = reg.label_history("qa")
    assert [(e.label, e.from_version, e.to_version, e.by, e.note) for e in history] == [
        ("production", 1, 2, "ana", "v2 wins"),
        ("production", 2, 1, "bo", "rollback"),
    ]
    assert all(e.at is not None for e in history)
    reg.set_label("qa", "canary", 2, by="ana")  # custom labels
    assert reg.labels("qa") == {"production": 1, "canary": 2}


def test_one_label_points_at_one_version_across_processes(make_registry: Any) -> None:
    a, b = make_registry(), make_registry()
    a.set_label("qa", "production", 2)
    b.refresh()
    assert b.get("qa").spec.version == 2


def test_label_errors(make_registry: Any) -> None:
    reg = make_registry()
    with pytest.raises(PromptNotFoundError, match="has no version 7"):
        reg.set_label("qa", "production", 7)
    with pytest.raises(PromptStoreError, match="label 'Prod!' must be lower-case"):
        reg.set_label("qa", "Prod!", 1)
    files_only = make_registry(store=False)
    with pytest.raises(
        PromptStoreError, match="moving a label needs a database; this registry reads files only"
    ):
        files_only.set_label("qa", "production", 2)


def test_file_and_database_must_agree_on_a_version(make_registry: Any, prompt_dir: Path) -> None:
    reg = make_registry()
    reg.create_version("qa", [{"role": "user", "content": "db {{ question }}"}], ["question"])
    (prompt_dir / "qa.yaml").write_text(
        (prompt_dir / "qa.yaml").read_text()
        + "  - version: 3\n    variables: [question]\n    messages: [{role: user, content: 'file {{ question }}'}]\n"
    )
    with pytest.raises(
        PromptStoreError, match=r"prompt 'qa' v3 differs between file:.*qa.yaml and the database"
    ):
        make_registry()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("versions: []", "versions: Tuple should have at least 1 item"),
        (
            "id: other\nversions: [{version: 1, messages: [{role: user, content: hi}]}]",
            "id 'other' must equal the file name 'bad'",
        ),
        (
            "versions: [{version: 1, messages: [{role: user, content: hi}]}]\nlabels: {production: 2}",
            "label 'production' points at version 2, which the file does not define (versions: 1)",
        ),
        ("versions: [{version: 1, messages: [{role: robot, content: hi}]}]", "versions.0.messages.0.role"),
        (
            "versions: [{version: 1, messages: [{role: user, content: hi}]}, {version: 1, messages: [{role: user, content: x}]}]",
            "version 1 of 'bad' is defined twice",
        ),
        (
            "versions: [{version: 1, messages: [{role: user, content: hi}], params: {temprature: 1}}]",
            "temprature",
        ),
    ],
)
def test_invalid_prompt_files_are_reported_with_the_file(prompt_dir: Path, text: str, message: str) -> None:
    (prompt_dir / "bad.yaml").write_text(text)
    with pytest.raises(PromptError) as info:
        load_prompt_dir(prompt_dir)
    assert str(info.value).startswith(str(prompt_dir / "bad.yaml"))
    assert message in str(info.value)


def test_experiment_variants_must_exist(make_registry: Any) -> None:
    from mm_litellm.policy.prompts import ExperimentSpec

    spec = ExperimentSpec(prompt="qa", variants={"a": {"version": 1}, "b": {"label": "beta"}})
    with pytest.raises(
        PromptNotFoundError, match="experiment 'x' variant 'b': prompt 'qa' has no label 'beta'"
    ):
        make_registry(PromptsSettings(experiments={"x": spec}))
    other = ExperimentSpec(prompt="nope", variants={"a": {"version": 1}, "b": {"version": 2}})
    with pytest.raises(
        PromptNotFoundError, match="experiment 'y' variant 'a': unknown prompt 'nope'; known: qa"
    ):
        make_registry(PromptsSettings(experiments={"y": other}))
