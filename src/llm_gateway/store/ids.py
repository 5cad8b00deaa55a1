"""Unique ids for admissions and spend rows, without a system call each.

`os.urandom(16).hex()` per id was two `getrandom` calls a governed request (about 1.5 µs
each on this machine, measured): an `IdSource` draws 96 random bits once and counts below
them, 32 hex digits in all (the spend log's `row_id` column). A source is made per hook,
in the lifespan, so each worker process (and each reloaded hook) draws its own bits; ids
from two sources collide only if they drew the same 96 bits. The bits are drawn again
before the counter wraps. Not secrets: nothing is authorised by knowing one.
"""

from __future__ import annotations

import os

COUNTER_BITS = 32


class IdSource:
    """Calling it gives an id no other call of any source gives (see the module)."""

    __slots__ = ("_next", "_prefix")

    def __init__(self) -> None:
        self._draw()

    def _draw(self) -> None:
        self._prefix = os.urandom(12).hex()
        self._next = 0

    def __call__(self) -> str:
        number = self._next
        if number >> COUNTER_BITS:
            self._draw()
            number = 0
        self._next = number + 1
        return f"{self._prefix}{number:08x}"
