"""Safe rendering: placeholder syntax, every refusal at registration, every render error, injection."""

from __future__ import annotations

from typing import Any

import pytest

from mm_litellm.prompts.apply import merge_messages
from mm_litellm.prompts.errors import RenderError, TemplateSyntaxError
from mm_litellm.prompts.template import PromptVersion, compile_prompt


def version(content: str, variables: tuple[str, ...] = ("x",), **extra: Any) -> PromptVersion:
    return PromptVersion(
        id="t",
        version=3,
        variables=variables,
        messages=({"role": "system", "content": "sys"}, {"role": "user", "content": content}),
        **extra,
    )


def render(content: str, values: dict[str, Any], variables: tuple[str, ...] = ("x",)) -> str:
    return compile_prompt(version(content, variables)).render(values).messages[1]["content"]


def test_placeholders_with_and_without_spaces() -> None:
    assert render("a {{x}} b {{ x }} c {{   y\t}}", {"x": "1", "y": "2"}, ("x", "y")) == "a 1 b 1 c 2"


def test_values_are_text_and_data_is_json() -> None:
    assert render("{{ x }}", {"x": ["price", "name"]}) == '["price", "name"]'
    assert render("{{ x }}", {"x": {"a": 1}}) == '{"a": 1}'
    assert render("{{ x }}", {"x": 3}) == "3"
    assert render("{{ x }}", {"x": True}) == "true"
    assert render("{{ x }}", {"x": None}) == "null"
    assert render("{{ x }}", {"x": "été"}) == "été"


def test_literal_braces_json_and_escapes() -> None:
    assert render('{"field": "{{ x }}"}', {"x": "v"}) == '{"field": "v"}'
    assert render('nested {"a": {"b": 1}}', {}, ()) == 'nested {"a": {"b": 1}}'
    assert render(r"\{{ x }} is how you write {{ x }}", {"x": "it"}) == "{{ x }} is how you write it"
    assert render(r"a \{name} b", {}, ()) == "a {name} b"


@pytest.mark.parametrize(
    ("content", "placeholder", "reason"),
    [
        (
            "{{ x.__class__ }}",
            "{{ x.__class__ }}",
            "uses attribute access; placeholders are plain variable names",
        ),
        (
            "{{ x.__class__.__mro__[1].__subclasses__() }}",
            "{{ x.__class__.__mro__[1].__subclasses__() }}",
            "uses attribute access",
        ),
        ("{{ x[0] }}", "{{ x[0] }}", "uses index access"),
        ("{{ x['key'] }}", "{{ x['key'] }}", "uses index access"),
        ("{{ lipsum() }}", "{{ lipsum() }}", "calls something"),
        ("{{ x | upper }}", "{{ x | upper }}", "uses a filter"),
        ("{{ x:>10 }}", "{{ x:>10 }}", "uses a format spec"),
        ("{{ x!r }}", "{{ x!r }}", "uses a conversion"),
        ("{{ }}", "{{ }}", "is an empty placeholder"),
        ("{{ 1x }}", "{{ 1x }}", "is not a plain variable name"),
        ("{{ x y }}", "{{ x y }}", "is not a plain variable name"),
        ("{% for c in x %}{{ c }}{% endfor %}", "{% for c in x %}", "is a Jinja block tag"),
        ("{# comment #}", "{# comment #}", "is a Jinja comment"),
        ("{x}", "{x}", "is a Python format field; placeholders are written {{ name }}"),
        ("{x.__class__}", "{x.__class__}", "is a Python format field"),
        ("{x[0]}", "{x[0]}", "is a Python format field"),
        ("{x!r:>5}", "{x!r:>5}", "is a Python format field"),
        ("text {{ x", "{{ x", "opens a placeholder that is never closed"),
        ("{{ y }}", "{{ y }}", "uses a variable that is not declared; declared variables: x"),
    ],
)
def test_unsafe_or_invalid_syntax_is_refused_at_registration(
    content: str, placeholder: str, reason: str
) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        compile_prompt(version(content))
    err = info.value
    assert err.placeholder == placeholder
    assert reason in err.reason
    assert str(err).startswith("prompt 't' v3 messages[1] (user): ")
    assert repr(placeholder) in str(err)


def test_missing_variable_is_named() -> None:
    compiled = compile_prompt(version("{{ x }} {{ y }}", ("x", "y")))
    with pytest.raises(RenderError) as info:
        compiled.render({"x": "1"})
    assert str(info.value) == "prompt 't' v3: missing variables: y; declared variables: x, y"
    assert info.value.names == ("y",)


def test_undeclared_extra_variable_is_named() -> None:
    compiled = compile_prompt(version("{{ x }}"))
    with pytest.raises(RenderError) as info:
        compiled.render({"x": "1", "admin": True})
    assert str(info.value) == "prompt 't' v3: undeclared variables: admin; declared variables: x"


def test_value_of_an_arbitrary_type_is_refused() -> None:
    compiled = compile_prompt(version("{{ x }}"))
    with pytest.raises(RenderError, match=r"prompt 't' v3: value of type object is not allowed .*: x"):
        compiled.render({"x": object()})


@pytest.mark.parametrize(
    "attack",
    [
        "{{ y }}",
        "{{ x.__class__.__init__.__globals__ }}",
        "{% import os %}{{ os.system('id') }}",
        "{x.__class__}",
        "{0.__class__}",
        "${jndi:ldap://x}",
        "\\{{ x }}",
        "}} {{",
    ],
)
def test_injection_in_values_is_inserted_verbatim_and_never_evaluated(attack: str) -> None:
    out = compile_prompt(version("A {{ x }} B {{ y }}", ("x", "y"))).render({"x": attack, "y": "safe"})
    assert out.messages[1]["content"] == f"A {attack} B safe"


def test_variable_names_must_be_plain() -> None:
    with pytest.raises(ValueError, match="is not a plain name"):
        version("{{ x }}", ("x.y",))


def test_rendering_is_deterministic_and_applies_model_params() -> None:
    spec = version(
        "{{ x }}",
        model="small",
        params={
            "temperature": 0.2,
            "max_tokens": 10,
            "stop": ["END"],
            "response_format": {"type": "json_object"},
        },
    )
    compiled = compile_prompt(spec)
    first, second = compiled.render({"x": "v"}), compiled.render({"x": "v"})
    assert first == second
    assert first.model == "small"
    assert dict(first.params) == {
        "temperature": 0.2,
        "max_tokens": 10,
        "stop": ["END"],
        "response_format": {"type": "json_object"},
    }


def test_merge_messages_is_idempotent() -> None:
    rendered = compile_prompt(version("{{ x }}")).render({"x": "v"}).messages
    once = merge_messages(rendered, [{"role": "user", "content": "follow-up"}])
    assert [m["content"] for m in once] == ["sys", "v", "follow-up"]
    assert merge_messages(rendered, once) == once  # a second render changes nothing
    assert merge_messages(rendered, merge_messages(rendered, None)) == list(map(dict, rendered))
