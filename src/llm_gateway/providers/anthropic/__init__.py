"""Anthropic's Messages API: upstream for chat, and the `/v1/messages` front door (see provider.py)."""
