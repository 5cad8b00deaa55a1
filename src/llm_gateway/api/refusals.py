"""Caller and gateway errors only the HTTP layer raises, in the hierarchy of core/errors.py:
a body that is not JSON by its `Content-Type`, a `Host` this gateway does not serve, and a
stream cut short by shutdown."""

from __future__ import annotations

from llm_gateway.core.errors import CallerError, GatewayError


class UnsupportedMediaType(CallerError):
    """415: per-request routes take JSON only, so a browser's cross-site "simple" request
    (`text/plain`, a form) is refused before its body is read."""

    status = 415
    default_code = "unsupported_media_type"


class HostNotAllowed(CallerError):
    """421: the `Host` header names a host this gateway is not configured to serve (what a
    DNS-rebinding page sends)."""

    status = 421
    default_code = "host_not_allowed"


class ShuttingDown(GatewayError):
    """503, as the last event of a stream the drain timeout cut short."""

    status = 503
    error_type = "service_unavailable"
    default_code = "shutting_down"
