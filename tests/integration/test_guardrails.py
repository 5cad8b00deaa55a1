"""Guardrails on a real gateway process, through the official openai and anthropic SDKs.

Input redaction reaches the fake upstream redacted; an input block is a 400 naming the
guardrail, the upstream never called, no spend row and no rate-limit token used; output
redaction works on answers and on streams (a card number the fake streams over three
chunks); a block mid-stream ends the stream with one error event; a stored Responses answer
is the redacted one the client got, and a refused one is not stored; an external guardrail
that errors blocks by default (fails closed) and lets through with `on_error: allow`.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory, openai_config
from tests.fakes.guardrail import FakeGuardrail
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.observed import scrape, total

MASTER = "sk-gateway-guardrails-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
CARD = "4111111111111111"
HEADER = "x-llm-gateway-guardrails"
PEM_BODY = base64.encodebytes(random.Random(11).randbytes(1200)).decode()
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"
"""A key of about 1,700 characters: far longer than the 48-character hold-back."""
PEM_LINES = [line for line in PEM_BODY.splitlines() if len(line) > 8]
MODELS = {
    "redact-in": ("upstream-gpt", ["pii-guard"]),
    "block-in": ("upstream-gpt", ["card-block"]),
    "redact-out": ("upstream-gpt", ["out-pii"]),
    "redact-out-chars": ("chars-7", ["out-pii"]),
    "block-out": ("upstream-gpt", ["out-words"]),
    "block-out-end": ("upstream-gpt", ["ext-out"]),
    "ext-check": ("upstream-gpt", ["ext-check"]),
    "ext-down": ("upstream-gpt", ["ext-down"]),
    "ext-down-allow": ("upstream-gpt", ["ext-down-allow"]),
    "secrets-out-chars": ("chars-7", ["out-secrets"]),
    "secrets-capped-chars": ("chars-7", ["out-secrets-capped"]),
    "plain": ("upstream-gpt", []),
}


@pytest.fixture(scope="module")
def gateway(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    fake_guardrail: tuple[FakeGuardrail, FakeServer],
    start_gateway: GatewayFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewayProcess:
    service = fake_guardrail[1].url
    config = openai_config(fake_openai[1].url, {}, master_key=MASTER)
    for name, (upstream, guardrails) in MODELS.items():
        deployment = {
            "provider": "fake",
            "model": upstream,
            "pricing": {"input_per_mtok": 1, "output_per_mtok": 2},
        }
        config["models"][name] = {"deployments": [deployment], "guardrails": guardrails}
    config["routing"] = {"max_attempts": 1}
    config["database_url"] = f"sqlite:///{tmp_path_factory.mktemp('guardrails') / 'gateway.db'}"
    config["governance"] = {"spend_log": {"flush_interval": 0.1}}
    config["guardrails"] = {
        "pii-guard": {"type": "pii", "stage": "input", "action": "redact"},
        "card-block": {"type": "pii", "entities": ["credit_card"], "stage": "input", "action": "block"},
        "out-pii": {"type": "pii", "stage": "output", "action": "redact", "stream_buffer_chars": 48},
        "out-words": {"type": "words", "words": ["forbidden"], "stage": "output", "action": "block"},
        "out-secrets": {"type": "secrets", "stage": "output", "action": "redact", "stream_buffer_chars": 48},
        "out-secrets-capped": {
            "type": "secrets",
            "stage": "output",
            "action": "redact",
            "stream_block_max_chars": 512,
        },
        "ext-check": {"type": "http", "url": f"{service}/check", "timeout": 2},
        "ext-out": {"type": "http", "url": f"{service}/check", "timeout": 2, "stage": "output"},
        "ext-down": {"type": "http", "url": f"{service}/error", "timeout": 2},
        "ext-down-allow": {"type": "http", "url": f"{service}/error", "timeout": 2, "on_error": "allow"},
    }
    return start_gateway(config)


@pytest.fixture
def sdk(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def claude(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key=MASTER, max_retries=0, timeout=10) as client:
        yield client


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def upstream_text(fake: FakeOpenAI) -> str:
    return str(fake.last().body["messages"][-1]["content"])


def test_input_redaction_reaches_the_upstream_redacted(
    sdk: openai.OpenAI, fake: FakeOpenAI, gateway: GatewayProcess
) -> None:
    counted = "llm_gateway_guardrail_results_total"
    before = total(scrape(gateway), counted, guardrail="pii-guard", result="redacted")
    raw = sdk.chat.completions.with_raw_response.create(
        model="redact-in", messages=ask(f"card {CARD}, mail jane@example.com")
    )
    assert upstream_text(fake) == "card [REDACTED:credit_card], mail [REDACTED:email]"
    assert raw.headers[HEADER] == "pii-guard=redacted"
    assert (
        raw.parse().choices[0].message.content == "echo: card [REDACTED:credit_card], mail [REDACTED:email]"
    )
    after = total(scrape(gateway), counted, guardrail="pii-guard", result="redacted")
    assert after - before == 1  # and in the metrics


def test_input_redaction_on_the_messages_front_door(claude: anthropic.Anthropic, fake: FakeOpenAI) -> None:
    message = claude.messages.create(
        model="redact-in",
        max_tokens=50,
        system="the agent's address is ops@corp.example",
        messages=[{"role": "user", "content": [{"type": "text", "text": f"pay with {CARD}"}]}],
    )
    sent = orjson.dumps(fake.last().body).decode()
    assert CARD not in sent and "ops@corp.example" not in sent
    assert message.content[0].type == "text" and CARD not in message.content[0].text


def test_input_block_is_a_400_naming_the_guardrail_and_the_upstream_is_never_called(
    sdk: openai.OpenAI, claude: anthropic.Anthropic, fake: FakeOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="block-in", messages=ask(f"card {CARD}"))
    assert refused.value.code == "guardrail_blocked"
    assert "card-block" in refused.value.message and CARD not in refused.value.message
    assert refused.value.response.headers[HEADER] == "card-block=blocked"
    with pytest.raises(anthropic.BadRequestError) as also:
        claude.messages.create(model="block-in", max_tokens=10, messages=ask(f"card {CARD}"))
    assert "card-block" in also.value.message
    assert fake.requests == []


def spend_rows(gateway: GatewayProcess, key_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{gateway.url}/admin/spend/logs", params={"key_id": key_id}, headers=ADMIN, timeout=10
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def test_a_refused_request_uses_no_rate_limit_token_and_no_spend(
    gateway: GatewayProcess, fake: FakeOpenAI
) -> None:
    body = {"name": "guarded", "rpm": 1, "metadata": {"guardrails": ["card-block"]}}
    created = httpx.post(f"{gateway.url}/admin/keys", json=body, headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    key = created.json()
    time.sleep(2.5)  # the key index refreshes at least every auth.refresh_seconds (2 s)
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key["key"], max_retries=0, timeout=10) as client:
        for _ in range(3):  # refused by the key's guardrail, on a model without one
            with pytest.raises(openai.BadRequestError, match="card-block"):
                client.chat.completions.create(model="plain", messages=ask(f"card {CARD}"))
        assert client.chat.completions.create(model="plain", messages=ask("hello")).choices  # rpm 1: unspent
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="plain", messages=ask("again"))
    deadline = time.monotonic() + 10
    while not (rows := spend_rows(gateway, key["id"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    # rows are written in order: the refusals before the answer would be here by now
    assert [row["status"] for row in rows] == [200]
    assert len(fake.requests) == 1


def test_output_redaction_of_an_answer(sdk: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="redact-out", messages=ask(f"it is {CARD}"))
    assert raw.parse().choices[0].message.content == "echo: it is [REDACTED:credit_card]"
    assert raw.headers[HEADER] == "out-pii=redacted"
    message = claude.messages.create(model="redact-out", max_tokens=20, messages=ask(f"it is {CARD}"))
    assert (
        message.content[0].type == "text" and message.content[0].text == "echo: it is [REDACTED:credit_card]"
    )


def test_a_card_streamed_over_three_chunks_is_redacted(
    sdk: openai.OpenAI, claude: anthropic.Anthropic, fake: FakeOpenAI
) -> None:
    prompt = f"my card {CARD} thanks, and that is all for today"
    stream = sdk.chat.completions.create(model="redact-out-chars", messages=ask(prompt), stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == "echo: my card [REDACTED:credit_card] thanks, and that is all for today"
    assert len([p for p in pieces if p]) > 1  # it streamed, not one piece at the end
    with claude.messages.stream(model="redact-out-chars", max_tokens=50, messages=ask(prompt)) as events:
        text = "".join(events.text_stream)
    assert text == "echo: my card [REDACTED:credit_card] thanks, and that is all for today"


def test_the_card_split_is_real(fake: FakeOpenAI) -> None:
    """The fake's `chars-7` stream really splits the card number over three chunks."""
    from tests.fakes.openai import answer_message, stream_chunks

    body = {"messages": ask(f"my card {CARD} thanks")}
    chunks = stream_chunks(body, "chars-7", answer_message(body, "chars-7"))
    holding = [c["choices"][0]["delta"].get("content", "") for c in chunks if c.get("choices")]
    assert len([p for p in holding if any(d in p for d in "41")]) >= 3 and CARD not in holding


def test_a_block_mid_stream_ends_with_one_error_event(gateway: GatewayProcess) -> None:
    prompt = "word " * 30 + "forbidden"
    body = {"model": "block-out", "messages": ask(prompt), "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=ADMIN, timeout=10
    ) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    errors = [e for e in events if e.startswith("{") and "error" in orjson.loads(e)]
    assert len(errors) == 1 and events[-1] == errors[0]
    assert orjson.loads(errors[0])["error"]["code"] == "guardrail_blocked"
    assert "out-words" in orjson.loads(errors[0])["error"]["message"]
    content = "".join(
        (choice["delta"].get("content") or "")
        for e in events[:-1]
        for choice in orjson.loads(e).get("choices", [])
    )
    assert content.startswith("echo: word") and "forbidden" not in content  # it flowed, then stopped


def test_a_block_mid_stream_through_the_sdks(sdk: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    prompt = "word " * 30 + "forbidden"
    stream = sdk.chat.completions.create(model="block-out", messages=ask(prompt), stream=True)
    with pytest.raises(openai.APIError, match="out-words"):
        for _ in stream:
            pass
    with (
        pytest.raises(anthropic.APIError, match="out-words"),
        claude.messages.stream(model="block-out", max_tokens=50, messages=ask(prompt)) as events,
    ):
        for _ in events.text_stream:
            pass


def test_an_external_guardrail_flags_and_its_texts(
    sdk: openai.OpenAI, fake: FakeOpenAI, fake_guardrail: tuple[FakeGuardrail, FakeServer]
) -> None:
    service, _ = fake_guardrail
    assert sdk.chat.completions.create(model="ext-check", messages=ask("all fine")).choices
    assert service.received[-1]["texts"] == ["all fine"] and service.received[-1]["stage"] == "input"
    with pytest.raises(openai.BadRequestError, match="ext-check") as refused:
        sdk.chat.completions.create(model="ext-check", messages=ask("a forbidden thing"))
    assert "forbidden word" in refused.value.message
    assert len(fake.requests) == 1


def test_an_external_guardrail_that_errors_blocks_by_default(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as refused:
        sdk.chat.completions.create(model="ext-down", messages=ask("hello"))
    assert refused.value.status_code == 503 and refused.value.code == "guardrail_unavailable"
    assert refused.value.response.headers[HEADER] == "ext-down=failed"
    assert fake.requests == []


def test_on_error_allow_lets_the_request_through(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="ext-down-allow", messages=ask("hello"))
    assert raw.parse().choices[0].message.content == "echo: hello"
    assert raw.headers[HEADER] == "ext-down-allow=skipped"


def test_no_header_without_guardrails(sdk: openai.OpenAI) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="plain", messages=ask("hello"))
    assert HEADER not in raw.headers


def test_the_log_never_holds_the_matched_text(gateway: GatewayProcess, sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="block-in", messages=ask(f"card {CARD}"))
    assert CARD not in gateway.log()


def test_embeddings_input_is_redacted(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    sdk.embeddings.create(model="redact-in", input=[f"card {CARD}", "plain"])
    assert fake.last().body["input"] == ["card [REDACTED:credit_card]", "plain"]


def test_responses_input_and_streamed_output(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    sdk.responses.create(model="redact-in", input=f"card {CARD}", instructions="mail ops@corp.example")
    sent = orjson.dumps(fake.last().body).decode()
    assert CARD not in sent and "ops@corp.example" not in sent and "[REDACTED:credit_card]" in sent
    prompt = f"my card {CARD} thanks, and that is all for today"
    events = list(sdk.responses.create(model="redact-out-chars", input=prompt, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "echo: my card [REDACTED:credit_card] thanks, and that is all for today"
    completed = [e for e in events if e.type == "response.completed"]
    assert completed and CARD not in completed[0].response.output_text


def test_a_stored_response_is_the_redacted_answer(sdk: openai.OpenAI) -> None:
    answer = sdk.responses.create(
        model="redact-out", input=f"it is {CARD}, mail ops@corp.example", store=True
    )
    assert answer.output_text == "echo: it is [REDACTED:credit_card], mail [REDACTED:email]"
    stored = sdk.responses.retrieve(answer.id)
    assert stored.output_text == answer.output_text
    kept = stored.model_dump_json()
    assert CARD not in kept and "ops@corp.example" not in kept


def test_a_stored_streamed_response_is_the_redacted_answer(sdk: openai.OpenAI) -> None:
    prompt = f"my card {CARD} thanks, and that is all for today"
    events = list(sdk.responses.create(model="redact-out-chars", input=prompt, stream=True, store=True))
    completed = [e for e in events if e.type == "response.completed"]
    assert len(completed) == 1
    stored = sdk.responses.retrieve(completed[0].response.id)
    assert stored.output_text == "echo: my card [REDACTED:credit_card] thanks, and that is all for today"
    assert CARD not in stored.model_dump_json()


def test_a_response_refused_at_the_end_of_its_stream_is_not_stored(sdk: openai.OpenAI) -> None:
    """The whole-text check runs when the upstream has finished, after the answer is complete:
    the refusal must still keep it out of the store."""
    seen: list[Any] = []
    try:
        for event in sdk.responses.create(model="block-out-end", input="a forbidden thing", stream=True):
            seen.append(event)
    except openai.APIError as error:
        assert "ext-out" in error.message
    else:
        assert [e for e in seen if e.type == "error" and "ext-out" in e.message]
    created = [e for e in seen if e.type == "response.created"]
    assert created and not [e for e in seen if e.type == "response.completed"]
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created[0].response.id)


def test_a_private_key_longer_than_the_hold_back_is_redacted_whole_on_streams(
    sdk: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    prompt = f"key:\n{PEM}\nkeep it safe, and that is all for today"
    expected = "echo: key:\n[REDACTED:private_key]\nkeep it safe, and that is all for today"
    stream = sdk.chat.completions.create(model="secrets-out-chars", messages=ask(prompt), stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == expected
    assert len([p for p in pieces if p]) > 2  # it flowed around the held block
    events = list(sdk.responses.create(model="secrets-out-chars", input=prompt, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == expected
    completed = [e for e in events if e.type == "response.completed"]
    assert completed and completed[0].response.output_text == expected
    with claude.messages.stream(model="secrets-out-chars", max_tokens=900, messages=ask(prompt)) as replies:
        assert "".join(replies.text_stream) == expected


def test_a_private_key_over_the_cap_ends_the_stream_with_none_of_it_sent(gateway: GatewayProcess) -> None:
    body = {"model": "secrets-capped-chars", "messages": ask(f"key:\n{PEM}\nbye"), "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=ADMIN, timeout=10
    ) as response:
        assert response.status_code == 200
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    error = orjson.loads(events[-1])["error"]
    assert error["code"] == "guardrail_blocked"
    assert "out-secrets-capped" in error["message"] and "private_key longer than 512" in error["message"]
    content = "".join(
        (choice["delta"].get("content") or "")
        for e in events[:-1]
        for choice in orjson.loads(e).get("choices", [])
    )
    assert content.startswith("echo: key:") and "BEGIN" not in content
    assert not [line for line in PEM_LINES if line in content]
