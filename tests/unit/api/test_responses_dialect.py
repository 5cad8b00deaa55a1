"""The Responses front door in-process (api/responses.py): typed SSE frames, failures after
the first event, the 405 and auth errors in OpenAI's shape, and GET/DELETE by id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llm_gateway.core.errors import UpstreamConnectionError
from llm_gateway.services.hooks import Answer
from tests.stubs import RecordingHook, mock_config
from tests.unit.api.asgi import error_of, frames, gateway

BODY = {"model": "mock", "input": "hello there"}


async def test_frames_are_named_after_their_event_type() -> None:
    async with gateway() as client:
        response = await client.post("/v1/responses", json={**BODY, "stream": True})
    assert response.status_code == 200
    parsed = frames(response)
    assert all(name == data["type"] for name, data in parsed)
    assert [data["sequence_number"] for _, data in parsed] == list(range(len(parsed)))
    assert parsed[-1][1]["response"]["status"] == "completed"


async def test_a_failure_after_the_first_event_ends_with_error_then_response_failed() -> None:
    created = {
        "type": "response.created",
        "sequence_number": 0,
        "response": {"id": "resp_x", "status": "in_progress"},
    }

    async def events() -> AsyncIterator[Any]:
        yield created
        raise UpstreamConnectionError("the upstream went away", provider="mock")

    hook = RecordingHook(answer=Answer(events()))
    async with gateway(hooks=[hook]) as client:
        response = await client.post("/v1/responses", json={**BODY, "stream": True})
    parsed = frames(response)
    assert [(name, data["sequence_number"]) for name, data in parsed] == [
        ("response.created", 0),
        ("error", 1),
        ("response.failed", 2),
    ]
    failed = parsed[-1][1]["response"]
    assert failed["id"] == "resp_x" and failed["status"] == "failed"
    assert failed["error"]["message"] == "the upstream went away"


async def test_errors_before_the_first_byte_are_openai_shaped() -> None:
    async with gateway(mock_config(master_key="sk-test")) as client:
        denied = await client.post("/v1/responses", json=BODY)
        wrong = await client.get("/v1/responses", headers={"authorization": "Bearer sk-test"})
        bad = await client.post(
            "/v1/responses", json={**BODY, "stream": "yes"}, headers={"authorization": "Bearer sk-test"}
        )
    assert denied.status_code == 401 and error_of("/v1/responses", denied)["type"]
    assert wrong.status_code == 405 and error_of("/v1/responses", wrong)
    assert bad.status_code == 400 and error_of("/v1/responses", bad)["param"] == "stream"


async def test_get_and_delete_by_id() -> None:
    async with gateway() as client:
        created = (await client.post("/v1/responses", json=BODY)).json()
        fetched = await client.get(f"/v1/responses/{created['id']}")
        deleted = await client.delete(f"/v1/responses/{created['id']}")
        gone = await client.get(f"/v1/responses/{created['id']}")
    assert fetched.json() == created
    assert deleted.json() == {"id": created["id"], "object": "response", "deleted": True}
    assert gone.status_code == 404
    assert error_of("/v1/responses/x", gone)["message"] == f"Response with id '{created['id']}' not found."


async def test_input_tokens_never_streams() -> None:
    async with gateway() as client:
        counted = await client.post("/v1/responses/input_tokens", json={**BODY, "stream": True})
    assert counted.status_code == 200 and counted.json()["object"] == "response.input_tokens"
    assert counted.headers["x-llm-gateway-attempts"] == "0"
