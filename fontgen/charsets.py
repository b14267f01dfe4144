"""Character sets: builtin national standards (derived from Python's codecs), text files, literal text."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from fontgen.errors import FontgenError


def _decode_rows(codec: str, leads: range, trails: range = range(0xA1, 0xFF)) -> list[str]:
    chars = []
    for lead in leads:
        for trail in trails:
            try:
                text = bytes([lead, trail]).decode(codec)
            except UnicodeDecodeError:
                continue
            if len(text) == 1 and is_ideograph(text):
                chars.append(text)
    return chars


def is_ideograph(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH"))


# Rows of each standard that hold its ideographs, in the standard's own order.
BUILTIN = {
    "gb2312-1": lambda: _decode_rows("gb2312", range(0xB0, 0xD8)),  # 3,755 common hanzi
    "gb2312-2": lambda: _decode_rows("gb2312", range(0xD8, 0xF8)),  # 3,008 less common hanzi
    "gb2312": lambda: BUILTIN["gb2312-1"]() + BUILTIN["gb2312-2"](),
    "big5": lambda: _decode_rows("big5", range(0xA4, 0xFA), trails=[*range(0x40, 0x7F), *range(0xA1, 0xFF)]),
    "jis0208": lambda: _decode_rows("euc_jp", range(0xB0, 0xF5)),  # JIS level 1 and 2 kanji
    "ksx1001-hanja": lambda: _decode_rows("euc_kr", range(0xCA, 0xFE)),
}


def unique_chars(text: str) -> list[str]:
    """Every character of `text` once, in order, without whitespace or control characters."""
    seen: dict[str, None] = {}
    for ch in text:
        if not ch.isspace() and unicodedata.category(ch)[0] != "C":
            seen.setdefault(ch, None)
    return list(seen)


def load_charset(spec: str) -> list[str]:
    """A builtin charset name or a UTF-8 text file of characters."""
    if spec in BUILTIN:
        return BUILTIN[spec]()
    path = Path(spec)
    if path.is_file():
        try:
            chars = unique_chars(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise FontgenError(f"cannot read charset file {path}: {exc}") from None
        if not chars:
            raise FontgenError(f"charset file {path} holds no characters")
        return chars
    raise FontgenError(f"unknown charset {spec!r}: not a file, and not one of {', '.join(BUILTIN)}")
