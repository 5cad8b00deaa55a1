"""Google AI Studio (Gemini): chat, streaming and embeddings (see provider.py)."""
