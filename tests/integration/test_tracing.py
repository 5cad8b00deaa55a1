"""OpenTelemetry traces from a real gateway process, received by a real OTLP/HTTP receiver
(tests/fakes/otlp.py) that decodes the protobuf payloads, driven with the openai SDK.

Each gateway exports under its own `service.name`, so tests tell their spans apart.
"""

from __future__ import annotations

import os
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY, GatewayFactory
from tests.fakes.openai import FakeOpenAI, Received
from tests.fakes.otlp import FakeOTLP, GrpcOTLP, Span
from tests.fakes.server import FakeServer
from tests.gateway import GatewayProcess
from tests.integration.observed import access_line
from tests.integration.routed import ordered, routed_config

OTLP_TOKEN = "otlp-ingest-secret-4242"
MODELS = {
    "gpt-test": ordered("upstream-gpt"),
    "after-500": ordered("error-500", "upstream-ok"),
    "lonely": ordered("flaky-99-500-t", routing={"max_attempts": 1}, fallbacks=["rescue"]),
    "rescue": ordered("upstream-rescue"),
    "bad-request": ordered("error-400"),
    "midstream": ordered("midstream-error"),
    "hedged": ordered("slow-3000", "upstream-fast", routing={"hedge_after_ms": 100}),
}
# Export every 50 ms instead of the SDK's 5 s, so a test waits for its spans briefly.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}


def tracing(receiver: FakeServer, service: str, **extra: Any) -> dict[str, Any]:
    return {
        "otlp_endpoint": receiver.url,
        "service_name": service,
        "headers": {"authorization": f"Bearer {OTLP_TOKEN}"},
        **extra,
    }


def start(
    start_gateway: GatewayFactory, upstream: FakeServer, receiver: FakeServer, service: str, **extra: Any
) -> GatewayProcess:
    config = routed_config(upstream.url, MODELS, tracing=tracing(receiver, service, **extra))
    return start_gateway(config, FAST_EXPORT)


@pytest.fixture(scope="module")
def traced(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    otlp_receiver: tuple[FakeOTLP, FakeServer],
    start_gateway: GatewayFactory,
) -> GatewayProcess:
    return start(
        start_gateway, fake_openai[1], otlp_receiver[1], "gw-traced", metrics=True, metrics_interval=0.2
    )


@pytest.fixture
def otlp(otlp_receiver: tuple[FakeOTLP, FakeServer]) -> FakeOTLP:
    return otlp_receiver[0]


def sdk(gateway: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10)


def ask(gateway: GatewayProcess, model: str, traceparent: str | None = None, **kwargs: Any) -> Any:
    headers = {"traceparent": traceparent} if traceparent else {}
    messages = [{"role": "user", "content": "hello there gateway"}]
    with sdk(gateway) as client:
        return client.chat.completions.with_raw_response.create(
            model=model, messages=messages, extra_headers=headers, **kwargs
        )


def traceparent(received: Received) -> str:
    """The `traceparent` the fake upstream received."""
    return next(value for name, value in received.headers.items() if name.lower() == "traceparent")


def new_ids() -> tuple[str, str]:
    return os.urandom(16).hex(), os.urandom(8).hex()


def trace_of(otlp: FakeOTLP, trace_id: str, count: int) -> tuple[Span, list[Span]]:
    """The server span of trace `trace_id` and its client spans by attempt number, once
    `count` spans (server included) have arrived."""
    spans = otlp.wait_for_spans(lambda s: s.trace_id == trace_id, count)
    servers = [s for s in spans if s.kind == "server"]
    assert len(servers) == 1, spans
    clients = sorted(
        (s for s in spans if s.kind == "client"), key=lambda s: s.attributes["llm_gateway.attempt"]
    )
    assert len(spans) == count, spans
    return servers[0], clients


def test_a_request_is_a_server_span_in_the_clients_trace_with_genai_attributes(
    traced: GatewayProcess,
    fake: FakeOpenAI,
    otlp: FakeOTLP,
    fake_openai: tuple[FakeOpenAI, FakeServer],
) -> None:
    trace_id, parent_id = new_ids()
    raw = ask(traced, "gpt-test", f"00-{trace_id}-{parent_id}-01")
    answer = raw.parse()

    server, (client,) = trace_of(otlp, trace_id, 2)
    assert server.parent_span_id == parent_id
    assert server.name == "chat gpt-test"
    assert server.service == "gw-traced"
    attributes = server.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.response.model"] == "upstream-gpt"
    # The fake counts words: three in the prompt; the echo is its own count.
    assert attributes["gen_ai.usage.input_tokens"] == 3 == answer.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens > 0
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["http.response.status_code"] == 200
    assert attributes["llm_gateway.request_id"] == raw.headers["x-request-id"]
    assert attributes["llm_gateway.key_id"] == "master"
    assert "error.type" not in attributes
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes

    assert client.parent_span_id == server.span_id
    assert client.name == "chat upstream-gpt"
    assert client.attributes["gen_ai.request.model"] == "upstream-gpt"
    assert client.attributes["llm_gateway.outcome"] == "answered"
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["server.port"] == fake_openai[1].port
    assert server.start <= client.start <= client.end <= server.end

    # The upstream's parent is the attempt that called it.
    sent = traceparent(fake.last())
    assert sent.split("-")[1] == trace_id
    assert sent.split("-")[2] == client.span_id


@pytest.mark.parametrize("sampled", ["01", "00"])
def test_the_access_line_carries_the_requests_trace_id(traced: GatewayProcess, sampled: str) -> None:
    trace_id, parent_id = new_ids()
    raw = ask(traced, "gpt-test", f"00-{trace_id}-{parent_id}-{sampled}")
    # Sampled out too: the id still reaches the upstream, so its logs and ours correlate.
    assert access_line(traced, raw.headers["x-request-id"])["trace_id"] == trace_id


def test_a_retry_shows_each_attempt_as_a_sibling_client_span(
    traced: GatewayProcess, fake: FakeOpenAI, otlp: FakeOTLP
) -> None:
    trace_id, parent_id = new_ids()
    ask(traced, "after-500", f"00-{trace_id}-{parent_id}-01")

    server, (failed, answered) = trace_of(otlp, trace_id, 3)
    assert {failed.parent_span_id, answered.parent_span_id} == {server.span_id}
    assert failed.attributes["gen_ai.request.model"] == "error-500"
    assert failed.attributes["llm_gateway.outcome"] == "failed"
    assert failed.attributes["error.type"] == "upstream_unavailable"
    assert failed.status == 2
    assert answered.attributes["gen_ai.request.model"] == "upstream-ok"
    assert failed.end <= answered.start
    assert server.attributes["llm_gateway.attempts"] == 2
    assert [traceparent(r).split("-")[1:3] for r in fake.requests] == [
        [trace_id, failed.span_id],
        [trace_id, answered.span_id],
    ]


def test_a_fallback_is_a_sibling_attempt_on_the_other_model(traced: GatewayProcess, otlp: FakeOTLP) -> None:
    trace_id, parent_id = new_ids()
    ask(traced, "lonely", f"00-{trace_id}-{parent_id}-01")

    server, (first, rescue) = trace_of(otlp, trace_id, 3)
    assert first.attributes["llm_gateway.model"] == "lonely"
    assert rescue.attributes["llm_gateway.model"] == "rescue"
    assert rescue.parent_span_id == first.parent_span_id == server.span_id
    assert server.attributes["llm_gateway.fallback"] == "rescue"
    assert server.attributes["gen_ai.response.model"] == "upstream-rescue"


@pytest.mark.parametrize("stream", [False, True])
def test_a_hedge_race_is_two_sibling_attempts_each_the_parent_of_its_upstream_call(
    traced: GatewayProcess, fake: FakeOpenAI, otlp: FakeOTLP, stream: bool
) -> None:
    trace_id, parent_id = new_ids()
    with sdk(traced) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="hedged",
            messages=[{"role": "user", "content": "race"}],
            stream=stream,
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        if stream:
            assert list(raw.parse())
    assert raw.headers["x-llm-gateway-hedged"] == "true"

    server, (slow, fast) = trace_of(otlp, trace_id, 3)
    assert {slow.parent_span_id, fast.parent_span_id} == {server.span_id}
    assert (slow.attributes["gen_ai.request.model"], slow.attributes["llm_gateway.outcome"]) == (
        "slow-3000",
        "abandoned",
    )
    assert (fast.attributes["gen_ai.request.model"], fast.attributes["llm_gateway.hedge"]) == (
        "upstream-fast",
        True,
    )
    assert fast.attributes["llm_gateway.outcome"] == "answered"
    assert server.attributes["llm_gateway.hedged"] is True
    parents = {r.body["model"]: traceparent(r).split("-")[2] for r in fake.requests}
    assert parents == {"slow-3000": slow.span_id, "upstream-fast": fast.span_id}


def test_a_stream_carries_its_usage_and_time_to_first_chunk(traced: GatewayProcess, otlp: FakeOTLP) -> None:
    trace_id, parent_id = new_ids()
    with sdk(traced) as client:
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        usage = [chunk.usage for chunk in stream if chunk.usage is not None][-1]

    server, (client_span,) = trace_of(otlp, trace_id, 2)
    assert server.attributes["gen_ai.request.stream"] is True
    assert server.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens == 2
    assert server.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert server.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert client_span.attributes["gen_ai.request.stream"] is True
    assert client_span.attributes["gen_ai.response.time_to_first_chunk"] > 0


def test_a_streamed_chat_carries_its_response_id_and_finish_reasons(
    traced: GatewayProcess, otlp: FakeOTLP
) -> None:
    trace_id, parent_id = new_ids()
    with sdk(traced) as client:
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        chunks = list(stream)
    reasons = [choice.finish_reason for chunk in chunks for choice in chunk.choices if choice.finish_reason]

    server, _ = trace_of(otlp, trace_id, 2)
    assert reasons and server.attributes["gen_ai.response.finish_reasons"] == reasons
    assert server.attributes["gen_ai.response.id"] == chunks[0].id


def test_a_streamed_anthropic_message_carries_its_id_and_stop_reason(
    traced: GatewayProcess, otlp: FakeOTLP
) -> None:
    trace_id, parent_id = new_ids()
    client = anthropic.Anthropic(base_url=traced.url, api_key=MASTER_KEY, max_retries=0, timeout=10)
    with (
        client,
        client.messages.stream(
            model="gpt-test",
            max_tokens=32,
            messages=[{"role": "user", "content": "stream from claude"}],
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        ) as stream,
    ):
        message = stream.get_final_message()

    server, _ = trace_of(otlp, trace_id, 2)
    assert server.attributes["llm_gateway.front_door"] == "anthropic.messages"
    assert server.attributes["gen_ai.request.stream"] is True
    assert message.stop_reason and server.attributes["gen_ai.response.finish_reasons"] == [
        message.stop_reason
    ]
    assert server.attributes["gen_ai.response.id"] == message.id


def test_a_streamed_response_carries_its_id_and_status(traced: GatewayProcess, otlp: FakeOTLP) -> None:
    trace_id, parent_id = new_ids()
    with sdk(traced) as client:
        stream = client.responses.create(
            model="gpt-test",
            input="stream a response",
            stream=True,
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        final = [event.response for event in stream if event.type == "response.completed"][-1]

    server, _ = trace_of(otlp, trace_id, 2)
    assert server.attributes["llm_gateway.front_door"] == "openai.responses"
    assert server.attributes["gen_ai.response.finish_reasons"] == ["completed"]
    assert server.attributes["gen_ai.response.id"] == final.id


def test_an_error_names_its_type_from_the_closed_vocabulary(traced: GatewayProcess, otlp: FakeOTLP) -> None:
    trace_id, parent_id = new_ids()
    with pytest.raises(openai.BadRequestError):
        ask(traced, "bad-request", f"00-{trace_id}-{parent_id}-01")

    server, (client,) = trace_of(otlp, trace_id, 2)
    assert server.attributes["error.type"] == "upstream_status_error"
    assert server.attributes["http.response.status_code"] == 400
    assert server.status == 0  # a 4xx is the caller's: not a server span error
    assert client.attributes["error.type"] == "upstream_status_error"


def test_the_anthropic_front_door_is_a_chat_span_with_its_stop_reason(
    traced: GatewayProcess, otlp: FakeOTLP
) -> None:
    trace_id, parent_id = new_ids()
    with anthropic.Anthropic(base_url=traced.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        message = client.messages.create(
            model="gpt-test",
            max_tokens=32,
            messages=[{"role": "user", "content": "hello from claude"}],
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )

    server, (attempt,) = trace_of(otlp, trace_id, 2)
    assert server.name == "chat gpt-test"
    assert server.attributes["llm_gateway.front_door"] == "anthropic.messages"
    assert server.attributes["gen_ai.response.finish_reasons"] == [message.stop_reason]
    assert server.attributes["gen_ai.usage.input_tokens"] == message.usage.input_tokens == 3
    assert server.attributes["gen_ai.request.max_tokens"] == 32
    assert attempt.parent_span_id == server.span_id


def test_a_stream_that_fails_after_its_first_chunk_is_an_error_span(
    traced: GatewayProcess, otlp: FakeOTLP
) -> None:
    trace_id, parent_id = new_ids()
    with sdk(traced) as client, pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model="midstream",
            messages=[{"role": "user", "content": "boom"}],
            stream=True,
            extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        list(stream)

    server, (attempt,) = trace_of(otlp, trace_id, 2)
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["error.type"] == attempt.attributes["error.type"]
    assert server.status == 2
    assert attempt.attributes["llm_gateway.outcome"] == "failed"


def test_a_new_trace_starts_without_a_client_traceparent(traced: GatewayProcess, otlp: FakeOTLP) -> None:
    raw = ask(traced, "gpt-test")
    request_id = raw.headers["x-request-id"]
    (server,) = otlp.wait_for_spans(lambda s: s.attributes.get("llm_gateway.request_id") == request_id)
    assert server.parent_span_id == ""


def test_a_client_that_sampled_out_is_respected(
    traced: GatewayProcess, fake: FakeOpenAI, otlp: FakeOTLP
) -> None:
    trace_id, parent_id = new_ids()
    ask(traced, "gpt-test", f"00-{trace_id}-{parent_id}-00")
    assert traceparent(fake.last()).startswith(f"00-{trace_id}-")
    assert int(traceparent(fake.last()).rsplit("-", 1)[1], 16) & 1 == 0
    later = new_ids()[0]
    ask(traced, "gpt-test", f"00-{later}-{parent_id}-01")
    trace_of(otlp, later, 2)  # spans are exported in order: the first one would be here by now
    assert not [s for s in otlp.spans if s.trace_id == trace_id]


def test_no_secret_reaches_the_collector_and_the_export_headers_do(
    traced: GatewayProcess, otlp: FakeOTLP
) -> None:
    retried, refused, denied = (new_ids() for _ in range(3))
    ask(traced, "after-500", f"00-{retried[0]}-{retried[1]}-01")
    with pytest.raises(openai.BadRequestError):
        ask(traced, "bad-request", f"00-{refused[0]}-{refused[1]}-01")
    wrong_key = "sk-gw-canary-not-a-key-31337"
    with (
        openai.OpenAI(base_url=f"{traced.url}/v1", api_key=wrong_key, max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"traceparent": f"00-{denied[0]}-{denied[1]}-01"},
        )
    trace_of(otlp, retried[0], 3)
    trace_of(otlp, refused[0], 2)
    (denial,) = otlp.wait_for_spans(lambda s: s.trace_id == denied[0])
    assert denial.attributes["error.type"] == "authentication_failed"
    for payload in otlp.raw:
        for secret in (MASTER_KEY, UPSTREAM_KEY, OTLP_TOKEN, wrong_key):
            assert secret.encode() not in payload
    assert any(h.get("Authorization") == f"Bearer {OTLP_TOKEN}" for h in otlp.headers)


def test_genai_metrics_are_exported_over_otlp(traced: GatewayProcess, otlp: FakeOTLP) -> None:
    ask(traced, "gpt-test")
    with sdk(traced) as client:
        assert list(
            client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "s"}], stream=True
            )
        )

    def gateway_point(name: str) -> Any:
        return lambda p: p.service == "gw-traced" and p.metric == name and p.count > 0

    tokens = otlp.wait_for_points(gateway_point("gen_ai.client.token.usage"))
    assert {p.attributes["gen_ai.token.type"] for p in tokens} == {"input", "output"}
    assert all(p.unit == "{token}" for p in tokens)
    inputs = [
        p
        for p in tokens
        if p.attributes["gen_ai.token.type"] == "input" and p.attributes["gen_ai.request.model"] == "gpt-test"
    ]
    assert inputs and inputs[-1].sum >= 3
    assert inputs[-1].attributes["gen_ai.provider.name"] == "openai"
    assert otlp.wait_for_points(gateway_point("gen_ai.client.operation.duration"))
    assert otlp.wait_for_points(gateway_point("gen_ai.server.request.duration"))
    (first_token, *_) = otlp.wait_for_points(gateway_point("gen_ai.server.time_to_first_token"))
    assert first_token.unit == "s" and first_token.sum > 0


def test_content_is_on_spans_only_when_opted_in(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    otlp_receiver: tuple[FakeOTLP, FakeServer],
    start_gateway: GatewayFactory,
    otlp: FakeOTLP,
) -> None:
    gateway = start(start_gateway, fake_openai[1], otlp_receiver[1], "gw-content", capture_content=True)
    trace_id, parent_id = new_ids()
    ask(gateway, "gpt-test", f"00-{trace_id}-{parent_id}-01")

    server, _ = trace_of(otlp, trace_id, 2)
    prompt = server.attributes["gen_ai.input.messages"]
    assert '"role":"user"' in prompt and "hello there gateway" in prompt
    completion = server.attributes["gen_ai.output.messages"]
    assert '"role":"assistant"' in completion and '"finish_reason":"stop"' in completion


def test_sample_ratio_zero_exports_nothing_but_still_propagates(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    otlp_receiver: tuple[FakeOTLP, FakeServer],
    start_gateway: GatewayFactory,
    fake: FakeOpenAI,
    otlp: FakeOTLP,
) -> None:
    gateway = start(start_gateway, fake_openai[1], otlp_receiver[1], "gw-unsampled", sample_ratio=0)
    for _ in range(5):
        ask(gateway, "after-500")
    flags = [int(traceparent(r).rsplit("-", 1)[1], 16) for r in fake.requests]
    assert len(flags) == 10 and not any(flag & 1 for flag in flags)  # the sampled bit is clear
    assert gateway.stop() in (0, -15)  # a graceful stop flushes whatever was queued
    assert not [s for s in otlp.spans if s.service == "gw-unsampled"]


def test_a_graceful_stop_flushes_the_queued_spans(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    otlp_receiver: tuple[FakeOTLP, FakeServer],
    start_gateway: GatewayFactory,
    otlp: FakeOTLP,
) -> None:
    config = routed_config(fake_openai[1].url, MODELS, tracing=tracing(otlp_receiver[1], "gw-flushed"))
    gateway = start_gateway(config)  # the SDK's own 5 s batch delay
    raw = ask(gateway, "gpt-test")
    assert gateway.stop() in (0, -15)
    request_id = raw.headers["x-request-id"]
    assert [s for s in otlp.spans if s.attributes.get("llm_gateway.request_id") == request_id]


def test_spans_go_over_grpc_when_configured(
    fake_openai: tuple[FakeOpenAI, FakeServer],
    otlp_grpc_receiver: GrpcOTLP,
    start_gateway: GatewayFactory,
    otlp: FakeOTLP,
) -> None:
    block = {"otlp_endpoint": otlp_grpc_receiver.url, "protocol": "grpc", "service_name": "gw-grpc"}
    gateway = start_gateway(routed_config(fake_openai[1].url, MODELS, tracing=block), FAST_EXPORT)
    trace_id, parent_id = new_ids()
    ask(gateway, "gpt-test", f"00-{trace_id}-{parent_id}-01")
    server, (client,) = trace_of(otlp, trace_id, 2)
    assert server.service == "gw-grpc"
    assert server.attributes["gen_ai.usage.input_tokens"] == 3
    assert client.parent_span_id == server.span_id
