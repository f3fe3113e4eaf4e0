"""Hash specs and their text form."""

import pytest

from safemedia.signals import HashFormatError, parse_hex, signal, to_hex


def test_pdq_hex_round_trips_most_significant_bit_first() -> None:
    text = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    value = parse_hex("PDQ", text)
    assert len(value) == 32
    assert value[0] == 0xF8
    assert to_hex(value) == text


@pytest.mark.parametrize(
    ("algorithm", "text", "message"),
    [
        ("pdq", "ab" * 16, "64 hex digits"),
        ("md5", "zz" * 16, "not hexadecimal"),
        ("crc32", "00", "unknown algorithm"),
    ],
)
def test_bad_hash_text_says_what_is_wrong(algorithm: str, text: str, message: str) -> None:
    with pytest.raises(HashFormatError, match=message):
        parse_hex(algorithm, text)


def test_algorithm_names_are_case_insensitive() -> None:
    assert signal(" SHA256 ").bits == 256
