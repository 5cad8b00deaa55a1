"""The cache's pure parts: keys, tenants, client directives, what is storable, replay, the LRU."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.context import MASTER, Call, Operation, Principal
from llm_gateway.core.errors import InvalidRequest
from llm_gateway.core.policy_config import CacheSettings
from llm_gateway.services.cache import cache_key, client_directives, decoded, storable, tenant
from llm_gateway.services.cache_replay import ChatCollector, MessageCollector, chat_chunks, message_events
from llm_gateway.store.response_cache import MemoryCache

KEY = Principal("key", key_id="k1", team_id="t1")
SETTINGS = CacheSettings()


def call(**body: Any) -> Call:
    return Call(Operation.CHAT, {"messages": [{"role": "user", "content": "hi"}], **body}, model="m")


def test_tenants_are_never_global_unless_asked() -> None:
    assert tenant(KEY, "team") == ["team", "t1"]
    assert tenant(Principal("key", key_id="k2"), "team") == ["key", "k2"]
    assert tenant(KEY, "key") == ["key", "k1"]
    assert tenant(MASTER, "team") == ["key", "master"]
    assert tenant(Principal("open"), "team") == ["principal", "open"]
    assert tenant(KEY, "global") == ["global"]


def test_the_key_covers_every_parameter_but_delivery() -> None:
    base = cache_key(call(), ["d"], ["team", "t1"])
    assert cache_key(call(stream=True, stream_options={"include_usage": True}), ["d"], ["team", "t1"]) == base
    assert cache_key(call(temperature=0), ["d"], ["team", "t1"]) != base
    assert cache_key(call(tools=[]), ["d"], ["team", "t1"]) != base
    assert cache_key(call(), ["d", "e"], ["team", "t1"]) != base
    assert cache_key(call(), ["d"], ["team", "t2"]) != base
    assert "hi" not in base


def test_client_directives() -> None:
    assert client_directives(call()) == (False, False, None)
    directed = call()
    directed.options.update(cache_control="No-Cache, no-store", cache_ttl="5")
    assert client_directives(directed) == (True, True, 5.0)
    for bad in ("soon", "-1", "nan", "inf"):
        refused = call()
        refused.options["cache_ttl"] = bad
        with pytest.raises(InvalidRequest):
            client_directives(refused)


def test_only_complete_answers_without_tool_calls_are_storable() -> None:
    done = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}]}
    assert storable(call(), done, SETTINGS)
    assert not storable(call(), {"choices": [{"message": {"content": "x"}, "finish_reason": None}]}, SETTINGS)
    tools = {"choices": [{"message": {"tool_calls": [{"id": "1"}]}, "finish_reason": "tool_calls"}]}
    assert not storable(call(), tools, SETTINGS)
    assert storable(call(), tools, CacheSettings(tool_calls=True))
    messages = Call(Operation.MESSAGES, {})
    assert storable(messages, {"type": "message", "stop_reason": "end_turn", "content": []}, SETTINGS)
    assert not storable(
        messages, {"type": "message", "stop_reason": "tool_use", "content": [{"type": "tool_use"}]}, SETTINGS
    )


async def test_a_chat_answer_replays_as_chunks() -> None:
    completion = {
        "id": "c",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hey"}, "finish_reason": "stop"}
        ],
        "usage": {"total_tokens": 3},
    }
    chunks = [chunk async for chunk in chat_chunks(completion, include_usage=True)]
    assert chunks[0]["choices"][0]["delta"]["content"] == "hey"
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"total_tokens": 3}
    assert len([chunk async for chunk in chat_chunks(completion, include_usage=False)]) == 2


async def test_a_message_replays_as_events() -> None:
    message = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "x",
        "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "hey"}],
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    events = [(name, orjson.loads(data)) async for name, data in message_events(message)]
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[2][1]["delta"]["text"] == "hey" and events[4][1]["usage"]["output_tokens"] == 2


async def test_the_memory_store_is_a_bounded_lru_with_ttls() -> None:
    now = [0.0]
    store = MemoryCache(2, clock=lambda: now[0])
    await store.put("a", b"1", 10)
    await store.put("b", b"2", 10)
    assert await store.get("a") == b"1"  # a is now the most recently used
    await store.put("c", b"3", 10)
    assert await store.get("b") is None and await store.get("a") == b"1" and len(store) == 2
    now[0] = 11
    assert await store.get("a") is None and len(store) == 1


def test_an_unreadable_entry_is_a_miss() -> None:
    assert decoded(None) is None
    for raw in (
        b"not json",
        b"[]",
        b'{"at": 1}',
        b'{"at": "x", "value": 1}',
        b'{"at": 1, "cost": "?", "value": 1}',
    ):
        assert decoded(raw) is None
    entry = decoded(b'{"at": 1, "cost": "0.5", "value": {"a": 1}}')
    assert entry is not None and str(entry.cost) == "0.5" and entry.value == {"a": 1}


def test_a_finished_chat_stream_is_collected_into_its_completion() -> None:
    collector = ChatCollector()
    head = {"id": "c", "created": 1, "model": "m", "object": "chat.completion.chunk"}
    for delta, finish in (
        ({"role": "assistant", "content": ""}, None),
        ({"content": "he"}, None),
        ({"content": "y"}, None),
        ({}, "stop"),
    ):
        collector.feed({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    completion = collector.completion({"total_tokens": 2})
    assert completion is not None
    assert completion["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "hey"}, "finish_reason": "stop"}
    ]
    assert completion["usage"] == {"total_tokens": 2} and completion["id"] == "c"


def test_an_unfinished_or_unreproducible_stream_is_not_collected() -> None:
    unfinished = ChatCollector()
    unfinished.feed({"choices": [{"index": 0, "delta": {"content": "he"}, "finish_reason": None}]})
    assert unfinished.completion(None) is None
    tools = ChatCollector()
    tools.feed(
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}, "finish_reason": "tool_calls"}]}
    )
    assert tools.lossy and tools.completion(None) is None


async def test_a_finished_messages_stream_is_collected_into_its_message() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "text", "text": "hey"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 5},
    }
    events = [event async for event in message_events(message)]
    whole = MessageCollector()
    for event in events:
        whole.feed(event)
    assert whole.message() == message
    cut = MessageCollector()
    for event in events[:-1]:
        cut.feed(event)
    assert cut.message() is None
    thinking = MessageCollector()
    for event in [
        e async for e in message_events({**message, "content": [{"type": "thinking", "thinking": "x"}]})
    ]:
        thinking.feed(event)
    assert thinking.lossy and thinking.message() is None
