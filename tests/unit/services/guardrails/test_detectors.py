"""The pure finders: check digits, boundaries, and no PII in ordinary numbers."""

from __future__ import annotations

import pytest

from llm_gateway.services.guardrails.credentials import secret_detectors
from llm_gateway.services.guardrails.detectors import (
    find_all,
    iban_valid,
    is_card_number,
    luhn,
    pii_detectors,
    redact,
    regex_detectors,
    word_detector,
)


def found(entity: str, text: str) -> list[str]:
    return [text[s.start : s.end] for s in find_all(pii_detectors([entity]), text)]


def test_luhn() -> None:
    assert luhn("79927398713")
    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")
    assert not luhn("79927398710")


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4012888888881881"],
)
def test_test_card_numbers_of_every_network_are_cards(number: str) -> None:
    assert is_card_number(number)


def test_a_luhn_valid_number_without_a_network_prefix_is_not_a_card() -> None:
    assert luhn("1234567890123452") and not is_card_number("1234567890123452")


@pytest.mark.parametrize(
    ("text", "card"),
    [
        ("my card is 4111111111111111.", "4111111111111111"),
        ("card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("amex 3782 822463 10005 ok", "3782 822463 10005"),
        ("call 555 0100 then 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ],
)
def test_cards_in_text(text: str, card: str) -> None:
    assert found("credit_card", text) == [card]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111111111111112 shipped",  # fails Luhn
        "invoice 1234567890123452",  # Luhn-valid, no network
        "the year 2024 had 365 days and 8760 hours",
        "pi is 3.14159265358979323846",
        "tracking 41111111111111111111111",  # too long for a card
    ],
)
def test_ordinary_numbers_are_not_cards(text: str) -> None:
    assert found("credit_card", text) == []


def test_iban_checksum() -> None:
    assert iban_valid("GB82WEST12345698765432")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("GB83WEST12345698765432")


@pytest.mark.parametrize(
    ("text", "iban"),
    [
        ("pay to GB82 WEST 1234 5698 7654 32 please", "GB82 WEST 1234 5698 7654 32"),
        ("IBAN: DE89370400440532013000", "DE89370400440532013000"),
        ("DE89 3704 0044 0532 0130 00 OK", "DE89 3704 0044 0532 0130 00"),
    ],
)
def test_ibans_in_text(text: str, iban: str) -> None:
    assert found("iban", text) == [iban]


def test_an_iban_with_a_wrong_check_digit_is_not_found() -> None:
    assert found("iban", "pay to GB83 WEST 1234 5698 7654 32") == []


def test_ssn_needs_dashes_and_an_issued_area() -> None:
    assert found("us_ssn", "ssn 123-45-6789.") == ["123-45-6789"]
    assert found("us_ssn", "ssn 123456789") == []
    assert found("us_ssn", "000-12-3456 666-12-3456 923-12-3456 123-00-4567 123-45-0000") == []
    assert found("us_ssn", "part 1123-45-6789") == []


def test_email() -> None:
    assert found("email", "write to jane.doe+x@example.co.uk today") == ["jane.doe+x@example.co.uk"]
    assert found("email", "the @ sign and user@localhost") == []


def test_phone_needs_a_plus_or_separators() -> None:
    assert found("phone", "call +1 415 555 2671 now") == ["+1 415 555 2671"]
    assert found("phone", "call (415) 555-2671") == ["(415) 555-2671"]
    assert found("phone", "call 415-555-2671") == ["415-555-2671"]
    assert found("phone", "id 4155552671, date 2024-01-15, total 1,234,567") == []


def test_ip_addresses() -> None:
    assert found("ip_address", "host 192.168.1.10 is up") == ["192.168.1.10"]
    assert found("ip_address", "v6 2001:db8::1 and ::1") == ["2001:db8::1", "::1"]
    assert found("ip_address", "999.1.1.1 version 1.2.3 at 12:30:45 std::vector") == []


@pytest.mark.parametrize(
    ("kind", "secret"),
    [
        ("openai_key", "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0kLmN"),
        ("anthropic_key", "sk-ant-api03-" + "x" * 40),
        ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
        ("google_api_key", "AIza" + "B" * 35),
        ("github_token", "ghp_" + "a" * 36),
        ("slack_token", "xoxb-1234567890-abcdef"),
        (
            "jwt",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
    ],
)
def test_secrets_of_each_kind(kind: str, secret: str) -> None:
    text = f"here: {secret} (do not share)"
    assert [text[s.start : s.end] for s in find_all(secret_detectors([kind]), text)] == [secret]


def test_an_anthropic_key_is_not_taken_for_an_openai_key() -> None:
    assert find_all(secret_detectors(["openai_key"]), "sk-ant-api03-" + "x" * 40) == []


def test_aws_secret_key_is_found_next_to_its_name_only() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    spans = find_all(secret_detectors(["aws_secret_key"]), f"aws_secret_access_key = {secret}")
    assert [(s.label, s.end - s.start) for s in spans] == [("aws_secret_key", 40)]
    assert find_all(secret_detectors(["aws_secret_key"]), f"some text {secret}") == []


def test_private_keys_whole_or_cut_short() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----"
    detectors = secret_detectors(["private_key"])
    assert redact(f"key:\n{pem}\nbye", find_all(detectors, f"key:\n{pem}\nbye")) == (
        "key:\n[REDACTED:private_key]\nbye"
    )
    cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN"
    assert redact(cut, find_all(detectors, cut)) == "[REDACTED:private_key]"


def test_words_are_whole_words_in_any_case() -> None:
    detector = word_detector(["project x", "class"], case_sensitive=False)
    text = "Project X is a CLASS act, classic."
    assert [text[s.start : s.end] for s in detector.find(text)] == ["Project X", "CLASS"]
    assert word_detector(["class"], case_sensitive=True).find("CLASS") == []


def test_regexes_and_redaction_of_overlaps() -> None:
    detectors = regex_detectors([r"ticket-\d+", r"\d{3,}"], ignore_case=True)
    text = "see TICKET-12345 and 999"
    assert redact(text, find_all(detectors, text)) == "see [REDACTED:pattern] and [REDACTED:pattern]"
