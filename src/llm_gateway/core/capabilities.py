"""What a provider can do natively, declared as data that routing filters on.

Every provider chats (OpenAI chat format in and out). Anything more is declared in its
class's `capabilities` set, so a service asks `Capability.EMBEDDINGS in provider.capabilities`
instead of checking a protocol with `isinstance`; the optional methods themselves are typed
by the protocols in `providers/base.py`.
"""

from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    CHAT = "chat"
    """OpenAI chat completions, streamed or not: every provider."""
    EMBEDDINGS = "embeddings"
    """`embed(...)`: OpenAI's embeddings request and response."""
    MESSAGES = "messages"
    """Anthropic's Messages API natively: `/v1/messages` passes through untranslated."""
    RESPONSES = "responses"
    """OpenAI's Responses API natively: `/v1/responses` passes through untranslated."""
    COMPLETIONS = "completions"
    """OpenAI's legacy completions natively: `/v1/completions` passes through untranslated."""


CHAT_ONLY: frozenset[Capability] = frozenset({Capability.CHAT})
