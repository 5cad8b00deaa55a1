"""The strict placeholder renderer and template lookup (services/templates.py)."""

from __future__ import annotations

import pytest

from llm_gateway.core.context import OPEN, Call, Operation, RequestContext
from llm_gateway.core.errors import InvalidRequest, NotFound
from llm_gateway.core.policy_config import PromptTemplate, TemplateVersions
from llm_gateway.services.templates import Templates, render

TEMPLATE = PromptTemplate.model_validate(
    {
        "version": "2",
        "variables": ["product", {"name": "tone", "default": "calm"}],
        "messages": [
            {"role": "system", "content": "{{ product }} in a {{tone}} tone"},
            {"role": "user", "content": "{{q}}"},
        ],
        "model": "m",
        "parameters": {"temperature": 0.3, "max_tokens": 9},
    }
)


def test_placeholders_are_filled_with_defaults_and_values_are_not_rendered_again() -> None:
    messages = render(TEMPLATE, {"product": "{{tone}}", "q": 7})
    assert messages == [
        {"role": "system", "content": "{{tone}} in a calm tone"},
        {"role": "user", "content": "7"},
    ]


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"q": "x"}, "product"),
        ({"q": "x", "product": "p", "extra": "e"}, "extra"),
        ({"q": ["x"], "product": "p"}, "q"),
    ],
)
def test_missing_unknown_and_mistyped_variables_are_named(variables: dict[str, object], named: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        render(TEMPLATE, variables)
    assert refused.value.param == f"prompt.variables.{named}"


def test_apply_renders_before_the_clients_messages_and_fills_only_what_is_unset() -> None:
    templates = Templates(
        {"t": TemplateVersions(versions=[TEMPLATE.model_copy(update={"version": "1"}), TEMPLATE])}
    )
    call = Call(
        Operation.CHAT,
        {
            "messages": [{"role": "user", "content": "more"}],
            "max_tokens": 5,
            "prompt": {"id": "t", "variables": {"product": "p", "q": "?"}},
        },
    )
    ctx = RequestContext("r", OPEN, "openai.chat")
    templates.apply(ctx, call)
    assert "prompt" not in call.body
    assert [m["content"] for m in call.body["messages"]] == ["p in a calm tone", "?", "more"]
    assert (call.body["max_tokens"], call.body["temperature"], call.model) == (5, 0.3, "m")
    assert ctx.template == ("t", "2")


def test_unknown_names_and_versions_are_404s() -> None:
    templates = Templates({"t": TEMPLATE})
    with pytest.raises(NotFound):
        templates.find("u", None)
    with pytest.raises(NotFound) as missing:
        templates.find("t", "1")
    assert "has: 2" in missing.value.message
