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


def responses_call(body: dict[str, object], operation: Operation = Operation.RESPONSES) -> Call:
    return Call(operation, body, model=body.get("model"))  # type: ignore[arg-type]


def test_a_responses_request_gets_the_template_in_front_of_its_input() -> None:
    templates = Templates({"t": TEMPLATE})
    call = responses_call(
        {
            "input": "more",
            "max_output_tokens": 5,
            "prompt": {
                "id": "t",
                "version": "2",
                "variables": {"product": "p", "q": {"type": "input_text", "text": "?"}},
            },
        }
    )
    ctx = RequestContext("r", OPEN, "openai.responses")
    templates.apply(ctx, call)
    assert "prompt" not in call.body
    assert call.body["input"] == [
        {"type": "message", "role": "system", "content": "p in a calm tone"},
        {"type": "message", "role": "user", "content": "?"},
        {"type": "message", "role": "user", "content": "more"},
    ]
    assert (call.body["max_output_tokens"], call.body["temperature"], call.model) == (5, 0.3, "m")
    assert "max_tokens" not in call.body
    assert ctx.template == ("t", "2")


def test_a_template_fills_max_output_tokens_from_its_chat_name() -> None:
    call = responses_call({"prompt": {"id": "t", "variables": {"product": "p", "q": "?"}}})
    Templates({"t": TEMPLATE}).apply(RequestContext("r", OPEN, "openai.responses"), call)
    assert call.body["max_output_tokens"] == 9
    assert call.body["input"][-1] == {"type": "message", "role": "user", "content": "?"}


def test_an_unknown_id_on_responses_is_left_for_the_upstream_and_a_bad_version_is_a_404() -> None:
    templates = Templates({"t": TEMPLATE})
    ctx = RequestContext("r", OPEN, "openai.responses")
    stored = responses_call({"input": "x", "prompt": {"id": "pmpt_1", "version": "3"}})
    templates.apply(ctx, stored)
    assert stored.body["prompt"] == {"id": "pmpt_1", "version": "3"} and ctx.template is None
    with pytest.raises(NotFound):
        templates.apply(ctx, responses_call({"input": "x", "prompt": {"id": "t", "version": "1"}}))
    with pytest.raises(NotFound):  # on chat every id is the gateway's
        templates.apply(ctx, Call(Operation.CHAT, {"messages": [], "prompt": {"id": "pmpt_1"}}))


def test_the_input_tokens_count_sees_the_rendered_template() -> None:
    call = responses_call(
        {"prompt": {"id": "t", "variables": {"product": "p", "q": "?"}}}, Operation.RESPONSES_INPUT_TOKENS
    )
    Templates({"t": TEMPLATE}).apply(RequestContext("r", OPEN, "openai.responses"), call)
    assert len(call.body["input"]) == 2


def test_a_legacy_completions_prompt_is_not_a_template() -> None:
    call = Call(Operation.COMPLETIONS, {"model": "m", "prompt": "Say hi"}, model="m")
    Templates({"t": TEMPLATE}).apply(RequestContext("r", OPEN, "openai.completions"), call)
    assert call.body == {"model": "m", "prompt": "Say hi"}


def test_an_image_variable_is_refused_naming_it() -> None:
    with pytest.raises(InvalidRequest) as refused:
        render(TEMPLATE, {"product": {"type": "input_image", "image_url": "x"}, "q": "?"})
    assert refused.value.param == "prompt.variables.product"


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, "p in a calm tone"),
        ("Mine.", "p in a calm tone\n\nMine."),
        (
            [{"type": "text", "text": "Mine."}],
            [{"type": "text", "text": "p in a calm tone"}, {"type": "text", "text": "Mine."}],
        ),
    ],
)
def test_an_anthropic_request_gets_the_system_messages_in_its_system(
    system: object, expected: object
) -> None:
    body: dict[str, object] = {
        "model": "x",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "more"}],
        "prompt": {"id": "t", "variables": {"product": "p", "q": "?"}},
    }
    if system is not None:
        body["system"] = system
    call = Call(Operation.MESSAGES, body, model="x")
    ctx = RequestContext("r", OPEN, "anthropic.messages")
    Templates({"t": TEMPLATE}).apply(ctx, call)
    assert "prompt" not in call.body and call.body["system"] == expected
    assert call.body["messages"] == [{"role": "user", "content": "?"}, {"role": "user", "content": "more"}]
    assert (call.body["max_tokens"], call.body["temperature"], call.model) == (5, 0.3, "x")
    assert ctx.template == ("t", "2")


def test_an_anthropic_system_of_another_form_is_a_400() -> None:
    call = Call(
        Operation.COUNT_TOKENS, {"system": 3, "prompt": {"id": "t", "variables": {"product": "p", "q": "?"}}}
    )
    with pytest.raises(InvalidRequest) as refused:
        Templates({"t": TEMPLATE}).apply(RequestContext("r", OPEN, "anthropic.count_tokens"), call)
    assert refused.value.param == "system"


def test_a_null_prompt_is_a_400_on_chat_and_left_alone_on_responses() -> None:
    ctx = RequestContext("r", OPEN, "openai.chat")
    with pytest.raises(InvalidRequest) as refused:
        Templates({"t": TEMPLATE}).apply(ctx, Call(Operation.CHAT, {"messages": [], "prompt": None}))
    assert refused.value.param == "prompt"
    call = responses_call({"input": "x", "prompt": None})
    Templates({"t": TEMPLATE}).apply(ctx, call)
    assert call.body == {"input": "x", "prompt": None}
