"""Unicode and whitespace normalisation that keeps scientific meaning.

`normalize_text` runs on every title, abstract and body (~30M documents), so every rule is a
precompiled character table (applied by a regex over just the characters it changes) or regex,
and pure-ASCII strings (most PubMed abstracts) take a fast path. The rules and the reasons for them are in docs/cleaning.md; in short:

- NFC, never NFKC: NFKC would turn "m²" into "m2", "½" into "1/2", "…" into "...", "″" into "′′"
  and merge symbols a biomedical model should see. The few compatibility characters we do want
  folded are listed explicitly below.
- Micro sign U+00B5 -> Greek mu U+03BC (what NFKC does for this one character), so "µg" and
  "μg" are one spelling; all other Greek letters, ±, ≥, ≤, ×, °, ‰, ′ are kept.
- Subscripts -> plain characters ("H₂O" -> "H2O", "Cₘₐₓ" -> "Cmax"): the parsers flatten
  `<sub>2</sub>` to "2", so that is already the dominant spelling in the corpus.
- Superscripts are kept by default ("m²", "10⁶"); `superscripts: caret` writes "m^2", "10^6"
  like the MathML renderer. Flattening them to digits would turn "10⁶" into "106".
- Hyphen-like dashes (hyphen, non-breaking hyphen, figure dash, en dash, minus sign) -> "-";
  the em dash is punctuation and is kept. Curly quotes -> ASCII quotes. Primes are kept.
- Every Unicode space -> " "; zero-width characters, soft hyphens, BOM, invisible math operators
  and control characters are removed; C1 controls are read as the Windows-1252 characters they
  almost always are ("\\x96" -> "–" -> "-").
- Cheap mojibake repair: a run like "Ã©", "â€™", "Âµ", "Î¼" (UTF-8 read as Windows-1252/Latin-1)
  is re-decoded when it is valid UTF-8; nothing else is touched (ftfy is not a dependency).
- Whitespace collapses inside a paragraph; paragraphs stay separated by exactly "\\n\\n".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

from data_prep.document import Document

# ---- config -----------------------------------------------------------------------------------


class Superscripts(str, Enum):
    keep = "keep"  # "m²", "10⁶"
    caret = "caret"  # "m^2", "10^6", like the MathML renderer


class Fold(str, Enum):
    ascii = "ascii"  # fold to the ASCII spelling
    keep = "keep"


@dataclass
class CleanConfig:
    """`cfg.clean`: which normalisations `clean_document` applies (all on by default)."""

    enabled: bool = True
    fix_mojibake: bool = True
    superscripts: Superscripts = Superscripts.keep
    subscripts: Fold = Fold.ascii  # "H₂O" -> "H2O"
    dashes: Fold = Fold.ascii  # hyphen-like dashes -> "-"
    quotes: Fold = Fold.ascii  # curly quotes -> ASCII quotes


# ---- translation tables -----------------------------------------------------------------------

_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t\x0b\x0c"
# Invisible characters that only split words: zero-width space/joiners, word joiner, BOM,
# soft hyphen, Mongolian vowel separator, invisible math operators (from MathML-derived text).
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064"
_HYPHENS = "\u2010\u2011\u2012\u2013\u2212\ufe63\uff0d"  # hyphen, nb-hyphen, figure/en dash, minus
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2039": "'", "\u203a": "'",
           "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"'}
_SUPERSCRIPT_ASCII = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni", strict=True))


def _base_table() -> dict[int, str | None]:
    t: dict[int, str | None] = {}
    for c in range(0x20):  # C0 controls; "\n" is structure, "\t" a space, "\r" handled below
        t[c] = None
    t[0x7F] = None
    for c in _SPACES:
        t[ord(c)] = " "
    t[ord("\n")] = "\n"
    t[ord("\r")] = "\n"  # "\r\n" -> "\n\n" would invent a paragraph: _CRLF handles the pair first
    t[0x2028] = "\n"  # line separator
    t[0x2029] = "\n\n"  # paragraph separator
    for c in _INVISIBLE:
        t[ord(c)] = None
    # C1 controls in text are Windows-1252 bytes decoded as Latin-1: read them as cp1252 meant.
    for b in range(0x80, 0xA0):
        try:
            t[b] = bytes([b]).decode("cp1252")
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined there
            t[b] = None
    t[0x00B5] = "\u03bc"  # micro sign -> Greek mu (one spelling for µg / μg)
    t[0x2103] = "\u00b0C"  # ℃ -> °C
    t[0x2109] = "\u00b0F"  # ℉ -> °F
    for c in range(0xFB00, 0xFB07):  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ from PDF-born text
        t[c] = unicodedata.normalize("NFKC", chr(c))
    for c in range(0xFF01, 0xFF5F):  # full-width ASCII (CJK input methods) -> ASCII
        t[c] = chr(c - 0xFEE0)
    return t


def _table(cfg: CleanConfig) -> dict[int, str | None]:
    t = _base_table()
    if cfg.subscripts == Fold.ascii:
        for c in range(0x1D00, 0x2C80):  # all "<sub>" compatibility characters live here
            d = unicodedata.decomposition(chr(c))
            if d.startswith("<sub>"):
                t[c] = chr(int(d.split()[1], 16))
    if cfg.dashes == Fold.ascii:
        for c in _HYPHENS:
            t[ord(c)] = "-"
    if cfg.quotes == Fold.ascii:
        for c, r in _QUOTES.items():
            t[ord(c)] = r
    # C1 bytes decoded through cp1252 may give a dash or quote: apply the same choices to them.
    for b in range(0x80, 0xA0):
        v = t.get(b)
        if v and len(v) == 1 and ord(v) in t and ord(v) != b:
            t[b] = t[ord(v)]
    return t


# Built once per process per choice of folds; keyed by the (immutable) choices the table depends
# on, never by a config object, so a later run with other choices cannot get this one's table.
_TABLES: dict[tuple[bool, bool, bool], tuple[dict[int, str | None], re.Pattern]] = {}


def _table_for(cfg: CleanConfig) -> tuple[dict[int, str | None], re.Pattern]:
    """The translation table and a regex matching the characters it changes.

    `re.sub` over the (rare) characters to change is ~6x faster than `str.translate` with a dict
    on non-ASCII text, because translate looks up every character of the string.
    """
    key = (cfg.subscripts == Fold.ascii, cfg.dashes == Fold.ascii, cfg.quotes == Fold.ascii)
    t = _TABLES.get(key)
    if t is None:
        table = _table(cfg)
        changed = "".join(re.escape(chr(k)) for k, v in sorted(table.items()) if v != chr(k))
        t = _TABLES[key] = (table, re.compile(f"[{changed}]"))
    return t


def _translate(s: str, cfg: CleanConfig) -> str:
    table, pattern = _table_for(cfg)
    return pattern.sub(lambda m: table[ord(m.group())] or "", s)


# ---- regexes ----------------------------------------------------------------------------------

_CRLF = re.compile(r"\r\n?")
_PARAGRAPH = re.compile(r"\n\s*\n")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SUPERSCRIPT_RUN = re.compile("[" + "".join(_SUPERSCRIPT_ASCII) + "]+")
# UTF-8 bytes seen through Windows-1252 (or Latin-1): a lead byte then 1-3 continuation bytes.
_CP1252_CONT = "\x80-\xbf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
# Two-byte leads are limited to the blocks mojibake really comes from (Latin-1 supplement, Latin
# Extended-A, Greek, Cyrillic) so that rare legitimate pairs like "É±" are left alone.
_MOJIBAKE_LEAD = "\xc2-\xc5\xce-\xd1\xe0-\xf4"
_MOJIBAKE_HINT = re.compile(f"[{_MOJIBAKE_LEAD}][{_CP1252_CONT}]")  # one class pair: a fast pre-check
_MOJIBAKE = re.compile(
    f"[\xc2-\xc5\xce-\xd1][{_CP1252_CONT}]|[\xe0-\xef][{_CP1252_CONT}]{{2}}|[\xf0-\xf4][{_CP1252_CONT}]{{3}}"
)


def _redecode(m: re.Match) -> str:
    s = m.group(0)
    try:  # a character < 256 is its own byte (Latin-1 reading); the rest are cp1252 specials
        raw = bytes(ord(c) if ord(c) < 256 else c.encode("cp1252")[0] for c in s)
        return raw.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s


def fix_mojibake(s: str) -> str:
    """Repair UTF-8 that was decoded as Windows-1252/Latin-1 ("Âµg" -> "µg"), run by run."""
    return _MOJIBAKE.sub(_redecode, s) if _MOJIBAKE_HINT.search(s) else s


def _caret(m: re.Match) -> str:
    return "^" + "".join(_SUPERSCRIPT_ASCII[c] for c in m.group(0))


def _paragraphs(s: str) -> str:
    if "\n" not in s:
        return " ".join(s.split())
    parts = (" ".join(p.split()) for p in _PARAGRAPH.split(s))
    return "\n\n".join(p for p in parts if p)


_DEFAULT = CleanConfig()


def normalize_text(s: str, cfg: CleanConfig = _DEFAULT) -> str:
    """Normalise one string; paragraphs (separated by a blank line) stay separated by "\\n\\n"."""
    if not s:
        return ""
    if "\r" in s:
        s = _CRLF.sub("\n", s)
    if s.isascii():  # fast path: only control characters and whitespace can need work
        if _ASCII_CONTROL.search(s):
            s = _translate(s, cfg)
        return _paragraphs(s)
    if cfg.fix_mojibake:
        s = fix_mojibake(s)
    s = _translate(s, cfg)
    # after translate: removing a zero-width character can leave a base + combining mark to compose
    s = unicodedata.normalize("NFC", s)
    if cfg.superscripts == Superscripts.caret:
        s = _SUPERSCRIPT_RUN.sub(_caret, s)
    return _paragraphs(s)


def clean_document(doc: Document, cfg: CleanConfig = _DEFAULT) -> Document:
    """Normalise `title`, `abstract` and `text` in place and return the document."""
    if not cfg.enabled:
        return doc
    doc.text = normalize_text(doc.text, cfg)
    if doc.title:
        doc.title = normalize_text(doc.title, cfg)
    if doc.abstract:
        doc.abstract = normalize_text(doc.abstract, cfg)
    return doc
