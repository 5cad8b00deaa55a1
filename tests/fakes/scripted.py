"""A scripted agent upstream: one fake model that drives a coding agent through a tool loop.

It speaks three wire formats on one port, so a test can put it behind any provider type:
OpenAI chat completions (`/v1/chat/completions`), OpenAI's Responses API (`/v1/responses`)
and Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`), streamed or not,
each encoded by the format's own fake (tests/fakes/openai.py, responses.py, anthropic.py).

The script, the same in every format:

    turn 1   the request offers a shell tool (Claude Code's `Bash`, Codex's `shell`,
             `shell_command` or `exec_command`) and holds no tool result yet: call it with
             COMMAND (arguments shaped by the tool's JSON schema: an argv array or a string)
    turn 2   a tool result is in the conversation: answer FINAL_TEXT
    other    requests without a shell tool (an agent's title or quota probes): a short text

Every request is kept in `requests` (path, headers, body), so a test can compare what the
gateway forwarded with a golden transcript.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import anthropic as anthropic_wire
from tests.fakes import openai as chat_wire
from tests.fakes import responses as responses_wire
from tests.fakes.anthropic import Received

OUTPUT_FILE = "out.txt"
FILE_CONTENT = "written-by-agent"
COMMAND = f"echo {FILE_CONTENT} > {OUTPUT_FILE}"
FINAL_TEXT = f"Done: {OUTPUT_FILE} written."
SIDE_TEXT = "ok"
CALL_IDS = {
    "/v1/chat/completions": "call_scripted_1",
    "/v1/responses": "call_scripted_1",
    "/v1/messages": "toolu_scripted_1",
}
"""The id of the tool call the script makes, by the path (wire format) it answers on."""
SHELL_TOOLS = ("Bash", "shell", "shell_command", "exec_command", "container.exec", "local_shell")
"""Names agents give their shell tool, most specific first."""


@dataclass
class ScriptedAgentUpstream:
    requests: list[Received] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/responses", self.responses)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        return app

    def reset(self) -> None:
        self.requests.clear()

    async def _receive(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(await request.read())
        self.requests.append(Received(request.path, dict(request.headers), body))
        return body

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._receive(request)
        model = str(body.get("model", ""))
        tools = [t.get("function", t) for t in body.get("tools") or []]
        answered = any(m.get("role") == "tool" for m in body.get("messages", []))
        message: dict[str, Any] = {"role": "assistant", "content": text_for(answered)}
        call = None if answered else shell_call(tools)
        if call is not None:
            name, arguments = call
            function = {"name": name, "arguments": json.dumps(arguments)}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": CALL_IDS[request.path], "type": "function", "function": function}],
            }
        if not body.get("stream"):
            return json_response(chat_wire.completion(body, model, message))
        chunks = chat_wire.stream_chunks(body, model, message)
        frames = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
        return await write_sse(request, [*frames, b"data: [DONE]\n\n"])

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._receive(request)
        model = str(body.get("model", ""))
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        answered = any(
            i.get("type") in ("function_call_output", "custom_tool_call_output")
            for i in responses_wire.input_list(body)
        )
        item = responses_wire.message(text_for(answered))
        call = None if answered else shell_call(tools)
        if call is not None:
            name, arguments = call
            item = {"type": "function_call", "call_id": CALL_IDS[request.path], "name": name}
            item["arguments"] = json.dumps(arguments)
        response = responses_wire.make_response(body, model, item)
        if not body.get("stream"):
            return json_response(response)
        events = responses_wire.response_events(response)
        return await write_sse(
            request,
            [f"event: {e['type']}\n".encode() + b"data: " + orjson.dumps(e) + b"\n\n" for e in events],
        )

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._receive(request)
        model = str(body.get("model", ""))
        tools = [t for t in body.get("tools") or [] if "input_schema" in t]
        answered = any(
            isinstance(m.get("content"), list) and any(b.get("type") == "tool_result" for b in m["content"])
            for m in body.get("messages", [])
        )
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text_for(answered)}]
        stop = "end_turn"
        call = None if answered else shell_call(tools, schema_key="input_schema")
        if call is not None:
            name, arguments = call
            blocks = [{"type": "tool_use", "id": CALL_IDS[request.path], "name": name, "input": arguments}]
            stop = "tool_use"
        message = {
            "id": "msg_scripted_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        }
        if not body.get("stream"):
            return json_response(message)
        events = anthropic_wire.message_events(message)
        return await write_sse(request, [anthropic_wire.sse(name, data) for name, data in events])

    async def count_tokens(self, request: web.Request) -> web.Response:
        await self._receive(request)
        return json_response({"input_tokens": 10})


def text_for(answered: bool) -> str:
    return FINAL_TEXT if answered else SIDE_TEXT


def shell_call(
    tools: list[dict[str, Any]], schema_key: str = "parameters"
) -> tuple[str, dict[str, Any]] | None:
    """The (name, arguments) of a call to the request's shell tool running COMMAND, if it has one."""
    by_name = {str(t.get("name")): t for t in tools}
    for name in SHELL_TOOLS:
        tool = by_name.get(name)
        if tool is not None:
            return name, shell_arguments(tool.get(schema_key) or {})
    return None


def shell_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """COMMAND in the shape the tool's schema asks for: `command` or `cmd`, argv or string."""
    properties: dict[str, Any] = schema.get("properties") or {}
    key = "cmd" if "cmd" in properties and "command" not in properties else "command"
    if (properties.get(key) or {}).get("type") == "array":
        arguments: dict[str, Any] = {key: ["bash", "-lc", COMMAND]}
    else:
        arguments = {key: COMMAND}
    if "description" in properties:
        arguments["description"] = "Write the output file"
    return arguments


def json_response(payload: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(payload), content_type="application/json")


async def write_sse(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    stream = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await stream.prepare(request)
    for frame in frames:
        await stream.write(frame)
    await stream.write_eof()
    return stream
