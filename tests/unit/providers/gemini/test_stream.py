"""The Gemini stream state machine, and the property that a streamed answer reassembles to
exactly what the non-streamed translation of the same answer says."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.providers.gemini.response import from_gemini
from llm_gateway.providers.gemini.stream import GeminiStream

USAGE = {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}


def event(
    parts: list[dict[str, Any]], finish: str | None = None, index: int = 0, **extra: Any
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "r1", "modelVersion": "gemini-x", **extra}


def run(events: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    state = GeminiStream("requested", **options)
    chunks: list[dict[str, Any]] = []
    for item in events:
        chunks.extend(state.feed(item))  # type: ignore[arg-type]
    chunks.extend(state.finish())  # type: ignore[arg-type]
    return chunks


def reassemble(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    """What an OpenAI client builds from the chunks: one message per choice, and the usage."""
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            state = choices.setdefault(
                choice["index"], {"text": "", "thought": "", "calls": {}, "finish": None}
            )
            delta = choice["delta"]
            state["text"] += delta.get("content") or ""
            state["thought"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = state["calls"].setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.get("id") or ""
                slot["name"] += call.get("function", {}).get("name") or ""
                slot["arguments"] += call.get("function", {}).get("arguments") or ""
            state["finish"] = choice["finish_reason"] or state["finish"]
    result = []
    for index in sorted(choices):
        state = choices[index]
        calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(state["calls"].items())
        ]
        message: dict[str, Any] = {
            "role": "assistant",
            "content": state["text"] if state["text"] or not calls else None,
        }
        if state["thought"]:
            message["reasoning_content"] = state["thought"]
        if calls:
            message["tool_calls"] = calls
        result.append({"index": index, "message": message, "finish_reason": state["finish"]})
    return result, usage


def test_text_deltas_then_one_finish_and_usage() -> None:
    events = [
        event([{"text": "Hel"}], "STOP", usageMetadata={"promptTokenCount": 3, "totalTokenCount": 3}),
        event([{"text": "lo"}], "STOP", usageMetadata=USAGE),
    ]
    chunks = run(events, include_usage=True)
    assert [c["choices"][0]["delta"] for c in chunks[:3]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:4]] == [None, None, None, "stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 7
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert {c["model"] for c in chunks} == {"gemini-x"}


def test_function_call_chunk_is_whole() -> None:
    chunks = run([event([{"functionCall": {"name": "f", "args": {"a": 1}}}], "STOP")])
    call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    state = GeminiStream("m", include_usage=True)
    assert state.feed({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": USAGE}) == []
    assert state.finished
    chunks = state.finish()
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["finish_reason"] == "content_filter"
    assert chunks[2]["usage"] is not None and chunks[2]["usage"]["prompt_tokens"] == 3


def test_unfinished_stream_is_noticed() -> None:
    state = GeminiStream("m")
    state.feed(event([{"text": "partial"}]))
    assert not state.finished


def test_usage_chunk_only_when_asked() -> None:
    chunks = run([event([{"text": "x"}], "STOP", usageMetadata=USAGE)])
    assert all(c["choices"] for c in chunks)


texts = st.text(alphabet='ab \n{}"é', max_size=12)
arguments = st.dictionaries(
    st.sampled_from(["city", "n", "deep"]),
    st.one_of(st.integers(-(2**53), 2**53), texts, st.none()),
    max_size=3,
)
atoms = st.one_of(
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("thought"), texts.filter(bool)),
    st.tuples(
        st.just("call"), st.sampled_from(["f", "get_weather"]), arguments, st.sampled_from([None, "c2ln+/=="])
    ),
)
finishes = st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "MALFORMED_FUNCTION_CALL"])


def part_of(atom: tuple[Any, ...], text: str | None = None) -> dict[str, Any]:
    if atom[0] == "call":
        part: dict[str, Any] = {"functionCall": {"name": atom[1], "args": atom[2]}}
        if atom[3]:
            part["thoughtSignature"] = atom[3]
        return part
    part = {"text": atom[1] if text is None else text}
    if atom[0] == "thought":
        part["thought"] = True
    return part


@st.composite
def answers(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A Gemini answer, whole and as a stream of events that slices it arbitrarily."""
    response_id = draw(st.sampled_from(["", "resp-1"]))
    base = {"responseId": response_id, "modelVersion": "gemini-x"} if response_id else {}
    if draw(st.booleans()) and draw(st.booleans()):
        blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": USAGE, **base}
        return blocked, [blocked]
    whole: list[dict[str, Any]] = []
    slices: list[tuple[int, list[dict[str, Any]], str | None]] = []
    for index in range(draw(st.integers(1, 2))):
        candidate_atoms = draw(st.lists(atoms, max_size=5))
        finish = draw(finishes)
        pieces: list[dict[str, Any]] = []
        for atom in candidate_atoms:
            if atom[0] == "call":
                pieces.append(part_of(atom))
                continue
            cuts = sorted(draw(st.lists(st.integers(0, len(atom[1])), max_size=3)))
            bounds = [0, *cuts, len(atom[1])]
            pieces += [part_of(atom, atom[1][a:b]) for a, b in itertools.pairwise(bounds)]
        content = {"parts": [part_of(a) for a in candidate_atoms], "role": "model"}
        whole.append({"content": content, "index": index, "finishReason": finish})
        groups = draw(st.lists(st.integers(1, 3), min_size=1, max_size=len(pieces) + 1))
        start = 0
        for size in groups:
            slices.append((index, pieces[start : start + size], None))
            start += size
        slices.append((index, pieces[start:], finish))
    # Interleave the candidates' slices, keeping each candidate's own in order.
    order = draw(st.permutations([index for index, _, _ in slices]))
    queues = {i: [s for s in slices if s[0] == i] for i in set(order)}
    events = []
    for index in order:
        _, parts, finish = queues[index].pop(0)
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
        if finish:
            candidate["finishReason"] = finish
        events.append({"candidates": [candidate], **base})
    events[-1]["usageMetadata"] = USAGE
    return {"candidates": whole, "usageMetadata": USAGE, **base}, events


@settings(max_examples=300, deadline=None)
@given(answers(), st.sampled_from([None, 1]))
def test_stream_reassembles_to_the_non_streamed_translation(
    answer: tuple[dict[str, Any], list[dict[str, Any]]], max_calls: int | None
) -> None:
    whole, events = answer
    expected = from_gemini(whole, "requested", max_calls=max_calls)
    chunks = run(events, include_usage=True, max_calls=max_calls)
    choices, usage = reassemble(chunks)
    assert choices == [{k: v for k, v in c.items() if k != "logprobs"} for c in expected["choices"]]
    assert usage == expected.get("usage")
    assert {c["model"] for c in chunks} == {expected["model"]}
    if whole.get("responseId"):
        assert {c["id"] for c in chunks} == {expected["id"]}
