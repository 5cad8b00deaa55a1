"""The streaming scanner: matches split over chunks, a bounded hold-back, the flush at the end."""

from __future__ import annotations

import pytest

from llm_gateway.core.guardrail_config import PiiGuardrail
from llm_gateway.services.guardrails.checks import TextCheck, build_check
from llm_gateway.services.guardrails.detectors import find_all, redact
from llm_gateway.services.guardrails.outcomes import Outcomes
from llm_gateway.services.guardrails.redactor import Blocked, StreamScanner

TEXT = "Sure. The card on file is 4111 1111 1111 1111 and the mail is jane@example.com, thanks!"


def pii(action: str = "redact", **settings: object) -> TextCheck:
    check = build_check("pii", PiiGuardrail(type="pii", stage="output", action=action, **settings))  # type: ignore[arg-type]
    assert isinstance(check, TextCheck)
    return check


def streamed(pieces: list[str], hold: int = 64, check: TextCheck | None = None) -> tuple[str, list[int]]:
    scanner = StreamScanner([check or pii()], hold, Outcomes())
    out, held = [], []
    for piece in pieces:
        out.append(scanner.feed(piece))
        held.append(scanner.held)
    out.append(scanner.flush())
    return "".join(out), held


def whole(text: str) -> str:
    check = pii()
    return redact(text, find_all(check.detectors, text))


def test_a_card_split_over_three_chunks_is_redacted() -> None:
    pieces = [
        "Sure. The card on file is 4111 11",
        "11 1111 11",
        "11 and the mail is jane@example.com, thanks!",
    ]
    text, _ = streamed(pieces, hold=48)
    assert "4111" not in text and "1111" not in text
    assert (
        text
        == whole(TEXT)
        == ("Sure. The card on file is [REDACTED:credit_card] and the mail is [REDACTED:email], thanks!")
    )


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 40])
def test_any_chunking_gives_the_whole_text_redaction(size: int) -> None:
    pieces = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    assert streamed(pieces, hold=48)[0] == whole(TEXT)


def test_every_split_point_of_two_chunks() -> None:
    for cut in range(len(TEXT) + 1):
        assert streamed([TEXT[:cut], TEXT[cut:]], hold=48)[0] == whole(TEXT), cut


def test_the_hold_back_is_bounded_and_the_stream_flows() -> None:
    long = "word " * 400 + TEXT
    pieces = [long[i : i + 7] for i in range(0, len(long), 7)]
    text, held = streamed(pieces, hold=64)
    assert max(held) <= 64
    assert text == whole(long)
    scanner = StreamScanner([pii()], 64, Outcomes())
    assert scanner.feed("x" * 64) == ""  # not yet over the hold-back
    assert scanner.feed("x" * 36) == "x" * 68  # everything but half the hold-back goes out at once
    assert scanner.feed("y" * 10) == ""  # and is scanned again only once it is full
    assert scanner.held == 42


def test_a_match_longer_than_the_hold_back_across_the_cut_is_sent_redacted() -> None:
    scanner = StreamScanner([pii()], 10, Outcomes())
    sent = scanner.feed("mail me at someone.with.a.long.name@example.com please")
    assert "someone" not in sent and scanner.held <= 10
    assert (sent + scanner.flush()).startswith("mail me at [REDACTED:email]")


def test_flush_sends_what_is_held() -> None:
    scanner = StreamScanner([pii()], 64, Outcomes())
    assert scanner.feed("short and 4111111111111111") == ""
    assert scanner.flush() == "short and [REDACTED:credit_card]"
    assert scanner.flush() == ""


def test_a_block_raises_before_any_of_the_match_is_sent() -> None:
    outcomes = Outcomes()
    scanner = StreamScanner([pii("block", entities=["credit_card"])], 48, outcomes)
    sent = scanner.feed("Here it is: 4111 1111 ")
    with pytest.raises(Blocked) as raised:
        sent += scanner.feed("1111 1111 and more")
        sent += scanner.feed(" text after it, enough to fill the hold-back")
    assert "4111" not in sent
    assert raised.value.reason == "credit_card"
    assert outcomes.results == {"pii": "blocked"}


def test_warn_passes_text_and_records() -> None:
    outcomes = Outcomes()
    scanner = StreamScanner([pii("warn")], 16, outcomes)
    assert scanner.feed(TEXT) + scanner.flush() == TEXT
    assert outcomes.results == {"pii": "warned"}


def test_ordinary_text_is_unchanged() -> None:
    plain = "The meeting is at 10:30 in room 4111, bring 2 copies of the 2024 report (pages 1-12)."
    assert streamed([plain[i : i + 5] for i in range(0, len(plain), 5)], hold=16)[0] == plain
