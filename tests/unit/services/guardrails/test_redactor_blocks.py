"""The streaming scanner on secrets longer than its hold-back: a PEM private key is held from
its begin marker until its end marker and sent redacted whole, wherever the chunks split
it; one longer than the guardrail's cap ends the stream (fail closed) with none of it sent."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.guardrail_config import SecretsGuardrail
from llm_gateway.services.guardrails.checks import TextCheck, build_check
from llm_gateway.services.guardrails.detectors import find_all, redact
from llm_gateway.services.guardrails.outcomes import Outcomes
from llm_gateway.services.guardrails.redactor import Blocked, StreamScanner
from llm_gateway.services.guardrails.streams import StreamGuard, chat_stream


def secrets(action: str = "redact", **settings: object) -> TextCheck:
    guardrail = SecretsGuardrail(type="secrets", stage="output", action=action, **settings)  # type: ignore[arg-type]
    check = build_check("secrets", guardrail)
    assert isinstance(check, TextCheck)
    return check


def pem(kind: str = "RSA ", size: int = 1200, seed: int = 7) -> str:
    raw = random.Random(seed).randbytes(size)
    body = base64.encodebytes(raw).decode()
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}-----END {kind}PRIVATE KEY-----"


KEY = pem()
TEXT = f"Here is the key you asked for:\n{KEY}\nStore it safely, and email ops@example.com."
REDACTED = (
    "Here is the key you asked for:\n[REDACTED:private_key]\nStore it safely, and email ops@example.com."
)
KEY_LINES = [line for line in KEY.splitlines()[1:-1] if len(line) >= 8]


def streamed(
    pieces: list[str], hold: int = 64, check: TextCheck | None = None, outcomes: Outcomes | None = None
) -> tuple[str, list[int]]:
    scanner = StreamScanner([check or secrets()], hold, outcomes or Outcomes())
    out, held = [], []
    for piece in pieces:
        out.append(scanner.feed(piece))
        held.append(scanner.held)
    out.append(scanner.flush())
    return "".join(out), held


def whole(text: str, check: TextCheck | None = None) -> str:
    return redact(text, find_all((check or secrets()).detectors, text))


def leaked(text: str) -> list[str]:
    """Lines of the key's body that reached the client."""
    return [line for line in KEY_LINES if line in text]


def test_the_whole_text_redaction_is_the_reference() -> None:
    assert len(KEY) > 1500 and whole(TEXT) == REDACTED


def test_every_split_point_of_two_chunks() -> None:
    for cut in range(len(TEXT) + 1):
        assert streamed([TEXT[:cut], TEXT[cut:]])[0] == REDACTED, cut


@pytest.mark.parametrize("hold", [8, 16, 64])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 31, 64, 100, 333])
def test_any_chunk_size_and_hold_back_gives_the_whole_text_redaction(size: int, hold: int) -> None:
    pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    text, _ = streamed(pieces, hold=hold)
    assert text == REDACTED and not leaked(text)


def test_every_split_point_of_three_chunks_around_the_markers() -> None:
    """The first cut anywhere in the begin marker, the second anywhere in the end marker."""
    begin, end = TEXT.index("-----BEGIN"), TEXT.index("-----END")
    for first in range(begin - 2, begin + 34):
        for second in range(end - 2, end + 32):
            pieces = [TEXT[:first], TEXT[first:second], TEXT[second:]]
            assert streamed(pieces, hold=8)[0] == REDACTED, (first, second)


@pytest.mark.parametrize("kind", ["", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED "])
def test_every_begin_marker_longer_than_half_the_hold_back(kind: str) -> None:
    key = pem(kind, size=300)
    text = f"key: {key} done"
    expected = whole(text)
    assert expected == "key: [REDACTED:private_key] done"
    for cut in range(len(text) + 1):
        assert streamed([text[:cut], text[cut:]], hold=8)[0] == expected, cut
    assert streamed(list(text), hold=8)[0] == expected


def test_a_legacy_encrypted_key_with_headers() -> None:
    body = base64.encodebytes(random.Random(3).randbytes(600)).decode()
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D4E5F\n\n"
        f"{body}-----END RSA PRIVATE KEY-----"
    )
    text = f"old key:\n{key}\nthat's all"
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    assert streamed(pieces, hold=16)[0] == whole(text) == "old key:\n[REDACTED:private_key]\nthat's all"


def test_a_key_cut_short_is_redacted_when_the_stream_ends() -> None:
    cut = TEXT[: TEXT.index("-----END") + 6]
    pieces = [cut[i : i + 9] for i in range(0, len(cut), 9)]
    text, _ = streamed(pieces)
    assert text == whole(cut) == "Here is the key you asked for:\n[REDACTED:private_key]"


def test_a_key_cut_short_then_prose_is_redacted_as_far_as_its_body_runs() -> None:
    """No end marker ever comes: the body is redacted, the prose after it flows."""
    body = KEY[: KEY.index("-----END")]
    text = f"{body}(truncated). Anything else? " + "More words here. " * 20
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    out, _ = streamed(pieces)
    assert out.startswith("[REDACTED:private_key](truncated). Anything else?") and not leaked(out)


def test_the_hold_is_bounded_by_the_cap_and_returns_to_the_hold_back_after_the_block() -> None:
    pieces = [TEXT[i : i + 4] for i in range(0, len(TEXT), 4)]
    _, held = streamed(pieces, hold=32)
    begin = TEXT.index("-----BEGIN")
    closed = (TEXT.index("PRIVATE KEY-----\nStore") + 15) // 4  # the chunk ending the end marker
    after = closed + 32 // 2 // 4 + 1  # the block is looked at again every half hold-back
    assert max(held[: begin // 4]) <= 32
    assert max(held) <= len(KEY) + 32
    assert max(held[after:]) <= 32


def test_a_block_over_the_cap_ends_the_stream_with_none_of_it_sent() -> None:
    outcomes = Outcomes()
    scanner = StreamScanner([secrets(stream_block_max_chars=512)], 64, outcomes)
    sent = ""
    with pytest.raises(Blocked) as raised:
        for i in range(0, len(TEXT), 10):
            sent += scanner.feed(TEXT[i : i + 10])
    assert sent.startswith("Here is the key") and "-----BEGIN" not in sent and not leaked(sent)
    assert raised.value.reason == "private_key longer than 512 characters, not sent"
    assert outcomes.results == {"secrets": "blocked"}


def test_the_cap_is_checked_as_the_block_grows_not_after_it() -> None:
    scanner = StreamScanner([secrets(stream_block_max_chars=300)], 16, Outcomes())
    with pytest.raises(Blocked):
        for char in TEXT:
            scanner.feed(char)
    assert scanner.held <= 301 + 16 // 2  # at the first character past the cap (and what came just before)


def test_a_block_action_refuses_a_key_whose_begin_marker_straddles_the_cut() -> None:
    text = "x" * 20 + pem("ENCRYPTED ", size=200)
    for cut in range(len(text) + 1):
        scanner = StreamScanner([secrets("block")], 8, Outcomes())
        sent = ""
        with pytest.raises(Blocked):
            sent += scanner.feed(text[:cut])
            sent += scanner.feed(text[cut:])
            sent += scanner.flush()
        assert "BEGIN" not in sent and sent == "x" * len(sent), cut


def test_warn_holds_nothing_back() -> None:
    outcomes = Outcomes()
    text, held = streamed([TEXT[i : i + 10] for i in range(0, len(TEXT), 10)], 32, secrets("warn"), outcomes)
    assert text == TEXT and max(held) <= 32
    assert outcomes.results == {"secrets": "warned"}


@pytest.mark.parametrize(
    "plain",
    [
        "-----BEGIN CERTIFICATE-----\nMIIB" + "A" * 900 + "\n-----END CERTIFICATE-----\n",
        "Markdown rules:\n---\n----- \n-----BEGIN\n" + "- a list item\n" * 80,
        "-----BEGIN PUBLIC KEY-----\n" + "B" * 600 + "\n-----END PUBLIC KEY-----",
    ],
)
def test_text_that_only_looks_like_a_begin_marker_flows(plain: str) -> None:
    text, held = streamed([plain[i : i + 6] for i in range(0, len(plain), 6)], hold=32)
    assert text == plain and max(held) <= 32 + 16


def test_holding_a_block_up_to_its_cap_stays_cheap() -> None:
    """Running every check over the held block every few characters cost about 60 times
    ordinary text of the same length here; only its own detector looks while it is held."""
    big = pem(size=11_000)  # about 15,000 characters, under the default cap
    text = f"a {big} b"
    plain = ("lorem ipsum " * (len(text) // 12 + 1))[: len(text)]

    def seconds(streamed_text: str) -> float:
        pieces = [streamed_text[i : i + 3] for i in range(0, len(streamed_text), 3)]
        started = time.perf_counter()
        out, _ = streamed(pieces, hold=64)
        elapsed = time.perf_counter() - started
        assert out == ("a [REDACTED:private_key] b" if streamed_text is text else plain)
        return elapsed

    baseline = min(seconds(plain) for _ in range(3))
    assert min(seconds(text) for _ in range(3)) < 20 * baseline + 0.01


def test_shouting_after_a_begin_is_held_only_as_long_as_a_marker_can_be() -> None:
    plain = "-----BEGIN " + "LOUD WORDS " * 60 + "and then quiet ones."
    text, held = streamed([plain[i : i + 4] for i in range(0, len(plain), 4)], hold=32)
    assert text == plain and max(held) <= 32 + 11 + 64 + 4


def test_a_key_inside_json_tool_arguments_with_escaped_line_breaks() -> None:
    arguments = orjson.dumps({"path": "id_rsa", "content": KEY}).decode()
    assert "\\n" in arguments and whole(arguments) == '{"path":"id_rsa","content":"[REDACTED:private_key]"}'
    for cut in range(0, len(arguments) + 1, 3):
        text = streamed([arguments[:cut], arguments[cut:]], hold=16)[0]
        assert text == whole(arguments), cut
    cut_short = arguments[: arguments.index("-----END")]
    pieces = [cut_short[i : i + 5] for i in range(0, len(cut_short), 5)]
    assert streamed(pieces, hold=16)[0] == '{"path":"id_rsa","content":"[REDACTED:private_key]'


async def test_a_key_streamed_in_chat_tool_call_arguments_is_redacted_whole() -> None:
    arguments = orjson.dumps({"content": KEY}).decode()

    async def chunks() -> AsyncIterator[Any]:
        for i in range(0, len(arguments), 6):
            call = {"index": 0, "function": {"arguments": arguments[i : i + 6]}}
            yield {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}

    guard = StreamGuard([secrets()], 32, Outcomes(), None)
    sent = ""
    async for chunk in chat_stream(chunks(), guard):
        for call in chunk["choices"][0]["delta"].get("tool_calls") or []:
            sent += call["function"]["arguments"]
    assert sent == '{"content":"[REDACTED:private_key]"}'


prose = st.text(alphabet="ab -\n.:", max_size=60) | st.sampled_from(
    ["-----BEGIN ", "-----BEGIN RSA", "x-----", "-----END RSA PRIVATE KEY-----"]
)


@settings(max_examples=300, deadline=None)
@given(
    before=prose,
    after=prose,
    kind=st.sampled_from(["", "RSA ", "EC ", "ENCRYPTED "]),
    size=st.integers(1, 400),
    hold=st.integers(8, 64),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_any_chunking_of_a_key_in_prose_gives_the_whole_text_redaction(
    before: str, after: str, kind: str, size: int, hold: int, cuts: list[int]
) -> None:
    key = pem(kind, size=size)
    text = f"{before}{key}{after}"
    points = sorted({min(cut, len(text)) for cut in cuts})
    pieces = [text[start:end] for start, end in zip([0, *points], [*points, len(text)], strict=True)]
    out, _ = streamed(pieces, hold=hold)
    assert out == whole(text)
    assert not [line for line in key.splitlines()[1:-1] if len(line) >= 8 and line in out]


def test_the_text_after_a_held_block_flows_as_soon_as_it_closes() -> None:
    text = f"{KEY}\n" + "word " * 200
    scanner = StreamScanner([secrets()], 32, Outcomes())
    sent = "".join(scanner.feed(text[i : i + 4]) for i in range(0, len(KEY) + 24, 4))
    assert sent == "[REDACTED:private_key]" and scanner.held <= 32
