"""Admission and row ids: 32 hex digits, never the same twice, another source's bits."""

from __future__ import annotations

from llm_gateway.store.ids import COUNTER_BITS, IdSource


def test_ids_are_32_hex_digits_and_unique() -> None:
    source = IdSource()
    ids = [source() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(found) == 32 and int(found, 16) >= 0 for found in ids)


def test_two_sources_draw_their_own_bits() -> None:
    first, second = IdSource(), IdSource()
    assert first()[:24] != second()[:24]


def test_the_bits_are_drawn_again_before_the_counter_wraps() -> None:
    source = IdSource()
    last_before = source()
    source._next = (1 << COUNTER_BITS) - 1
    at_the_end = source()
    after = source()
    assert at_the_end.endswith("ffffffff") and at_the_end[:24] == last_before[:24]
    assert after.endswith("00000000") and after[:24] != last_before[:24]
    assert len({last_before, at_the_end, after}) == 3
