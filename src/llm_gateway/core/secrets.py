"""Secret types for configuration: values that must never show in a repr, a log or a dump.

`SecretUrl` (userinfo and query values masked), `RedisUrl` and `DatabaseUrl` (checked to be
usable at load), `SecretHeaders` (names shown, values masked); `environ_of` gives a validator
the loader's environment (never `os.environ`). Keys and tokens use pydantic's `SecretStr`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import GetCoreSchemaHandler, SerializationInfo, ValidationInfo
from pydantic_core import core_schema

MASK = "**********"


def environ_of(info: ValidationInfo) -> Mapping[str, str]:
    """The environment the loader validates against: `context={"environ": ...}`.

    Validators that need environment variables read them here, never from `os.environ`,
    so a `.env.<ENVIRONMENT>` file and a test's own `environ` are seen; without a context
    (a model built directly) there is no environment at all.
    """
    context = info.context
    environ = context.get("environ") if isinstance(context, Mapping) else None
    return environ if isinstance(environ, Mapping) else {}


def mask_url(url: str) -> str:
    """`url` with its userinfo and every query value replaced by a mask; the rest is kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


class SecretUrl:
    """An http(s) URL that may carry credentials (`https://user:token@host`, `?key=...`).

    `repr`, `str` and `model_dump()` show it with userinfo and query values masked;
    `get_secret_value()` gives the URL as configured. Subclasses set `schemes` and may
    check more in `_check`.
    """

    __slots__ = ("_url",)
    schemes: ClassVar[frozenset[str]] = frozenset({"http", "https"})

    def __init__(self, url: str) -> None:
        self._url = url

    def get_secret_value(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({mask_url(self._url)!r})"

    def __str__(self) -> str:
        return mask_url(self._url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretUrl) and type(other) is type(self) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    @classmethod
    def _check(cls, url: str) -> None:
        """Raise ValueError, without echoing the URL, when it cannot be used."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (parses the port: a bad one raises ValueError)
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if parts.scheme not in cls.schemes or not parts.hostname:
            schemes = ", ".join(f"{scheme}://" for scheme in sorted(cls.schemes))
            raise ValueError(f"must be an absolute URL starting with {schemes} and naming a host")

    @classmethod
    def _validate(cls, value: str | SecretUrl) -> SecretUrl:
        if isinstance(value, SecretUrl):
            value = value.get_secret_value()
        cls._check(value)
        return cls(value)

    @staticmethod
    def _serialize(value: SecretUrl, info: SerializationInfo) -> str | SecretUrl:
        return str(value) if info.mode == "json" else value

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        accepted = core_schema.union_schema([core_schema.is_instance_schema(cls), core_schema.str_schema()])
        return core_schema.no_info_after_validator_function(
            cls._validate,
            accepted,
            serialization=core_schema.plain_serializer_function_ser_schema(cls._serialize, info_arg=True),
        )


class RedisUrl(SecretUrl):
    """A Redis URL (`redis://:password@host:6379/0`, `rediss://`, `unix://`), checked the way
    redis-py will read it when the gateway starts."""

    __slots__ = ()
    schemes: ClassVar[frozenset[str]] = frozenset({"redis", "rediss", "unix"})

    @classmethod
    def _check(cls, url: str) -> None:
        # Building the pool and one (unconnected) connection does no I/O, and raises for
        # everything redis-py would otherwise raise at start-up: scheme, port, db, options.
        # Imported here: redis-py costs ~9 MiB and ~0.1 s to import, and only a config that
        # names Redis needs it.
        import redis.asyncio as aioredis

        try:
            aioredis.ConnectionPool.from_url(url).make_connection()  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a usable Redis URL ({exc})") from None


class SecretHeaders(dict[str, str]):
    """Extra HTTP headers, which may carry credentials (`x-api-key`, `authorization`).

    To the code that sends them they are a plain `dict[str, str]` (`{**headers}` works);
    `repr`, `str` and `model_dump()` show the names with every value masked.
    """

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{name!r}: {MASK!r}" for name in self) + "}"

    __str__ = __repr__

    def masked(self) -> dict[str, str]:
        return dict.fromkeys(self, MASK)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.dict_schema(core_schema.str_schema(), core_schema.str_schema()),
            serialization=core_schema.plain_serializer_function_ser_schema(cls.masked),
        )


class DatabaseUrl(SecretUrl):
    """Where keys and teams live: `sqlite:///path` (relative to the working directory;
    `sqlite:///:memory:` for tests) or `postgresql://user:password@host/db` for several
    instances. The async drivers (aiosqlite, asyncpg) are chosen by the store, so either
    the plain scheme or `+aiosqlite`/`+asyncpg` is accepted."""

    __slots__ = ()
    schemes: ClassVar[frozenset[str]] = frozenset(
        {"sqlite", "sqlite+aiosqlite", "postgresql", "postgres", "postgresql+asyncpg"}
    )

    @classmethod
    def _check(cls, url: str) -> None:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in cls.schemes:
            schemes = ", ".join(f"{scheme}://" for scheme in sorted(cls.schemes))
            raise ValueError(f"must start with one of {schemes}")
        if scheme.startswith("sqlite"):
            if not rest.startswith("/") or rest == "/":
                raise ValueError("a SQLite URL names a file: sqlite:///relative.db or sqlite:////absolute.db")
            return
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (parses the port: a bad one raises ValueError)
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if not parts.hostname:
            raise ValueError("a PostgreSQL URL names a host: postgresql://user:password@host:5432/db")
