"""Document filters that say why they drop a document (datatrove style).

A `Filter` is a callable `doc -> None` (keep) or `doc -> "reason"` (drop); `apply_filters` returns
the first reason in the order `build_filters` lists them:

    empty, retracted, retraction_notice, erratum, expression_of_concern, non_english,
    no_abstract, too_short

Metadata checks come first because they are exact and cheap and because the most specific reason
is the most useful count in the manifest (a retraction notice is also short, but "too_short" would
hide why it went). The language check runs py3langid only for documents whose language is
unknown, so it is placed after the other metadata checks but before the length checks. Every rule
and default is explained in docs/cleaning.md.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from data_prep.clean import config_from_mapping
from data_prep.document import Document
from data_prep.errors import ConfigError

# PubMed publication types (exact strings, checked against the shared NLM samples) and JATS
# article-type values; both lists are overridable in the config.
RETRACTED_PUBLICATION_TYPES = ("Retracted Publication",)
RETRACTION_NOTICE_TYPES = ("Retraction of Publication",)
ERRATUM_TYPES = ("Published Erratum",)
EXPRESSION_OF_CONCERN_TYPES = ("Expression of Concern",)
# PubMed CommentsCorrections RefType values the parser keeps in `extra["comments_corrections"]`:
# "RetractionIn" on a retracted article (even when the publication type was never added),
# "RetractionOf" on the notice, "ErratumFor" on an erratum, "ExpressionOfConcernFor" on an EoC.
RETRACTED_REF_TYPES = ("RetractionIn",)
RETRACTION_NOTICE_REF_TYPES = ("RetractionOf",)
ERRATUM_REF_TYPES = ("ErratumFor",)
EXPRESSION_OF_CONCERN_REF_TYPES = ("ExpressionOfConcernFor",)
RETRACTION_ARTICLE_TYPES = ("retraction", "partial-retraction")
ERRATUM_ARTICLE_TYPES = ("correction", "erratum")
EXPRESSION_OF_CONCERN_ARTICLE_TYPES = ("expression-of-concern",)

# Languages we cannot judge from metadata: check the text instead.
UNKNOWN_LANGUAGES = frozenset({"", "und", "mul", "zxx"})

# ISO 639-1 (JATS xml:lang, py3langid) -> ISO 639-2/B (what PubMed writes in <Language>).
ISO639_1_TO_2B = {
    "af": "afr", "am": "amh", "ar": "ara", "as": "asm", "az": "aze", "be": "bel", "bg": "bul",
    "bn": "ben", "br": "bre", "bs": "bos", "ca": "cat", "cs": "cze", "cy": "wel", "da": "dan",
    "de": "ger", "el": "gre", "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "baq",
    "fa": "per", "fi": "fin", "fr": "fre", "fy": "fry", "ga": "gle", "gd": "gla", "gl": "glg",
    "gu": "guj", "ha": "hau", "he": "heb", "hi": "hin", "hr": "hrv", "ht": "hat", "hu": "hun",
    "hy": "arm", "id": "ind", "ig": "ibo", "is": "ice", "it": "ita", "ja": "jpn", "jv": "jav",
    "ka": "geo", "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "ku": "kur", "ky": "kir",
    "la": "lat", "lb": "ltz", "lg": "lug", "ln": "lin", "lo": "lao", "lt": "lit", "lv": "lav",
    "mg": "mlg", "mk": "mac", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "may", "mt": "mlt",
    "my": "bur", "nb": "nob", "ne": "nep", "nl": "dut", "nn": "nno", "no": "nor", "oc": "oci",
    "om": "orm", "or": "ori", "pa": "pan", "pl": "pol", "ps": "pus", "pt": "por", "qu": "que",
    "ro": "rum", "ru": "rus", "rw": "kin", "sa": "san", "se": "sme", "si": "sin", "sk": "slo",
    "sl": "slv", "sn": "sna", "so": "som", "sq": "alb", "sr": "srp", "st": "sot", "sv": "swe",
    "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha", "tk": "tuk", "tl": "tgl",
    "tr": "tur", "tt": "tat", "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie",
    "xh": "xho", "yo": "yor", "zh": "chi", "zu": "zul",
}


def normalize_language(code: str) -> str:
    """"EN", "en-US", "en_GB", "eng" -> "eng"; unknown two-letter codes are returned lowercased."""
    c = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return ISO639_1_TO_2B.get(c, c)


class Filter(Protocol):
    """Returns None to keep a document, or the reason it is dropped."""

    name: str

    def __call__(self, doc: Document) -> str | None: ...


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """`cfg.filter`. Lists of type strings default to the module constants above."""

    enabled: bool = True
    min_chars: int = 100
    min_words: int = 15
    # ISO 639-2/B codes (two-letter codes are accepted and mapped); null or ["*"] keeps all.
    keep_languages: tuple[str, ...] | None = ("eng",)
    detect_unknown_language: bool = True  # py3langid on documents with no usable language
    langid_min_prob: float = 0.8  # drop only when the detector is at least this sure
    langid_max_chars: int = 2000  # classify this much of the text (enough; keeps it fast)
    keep_english_abstract: bool = False  # keep non-English PubMed records typed "English Abstract"
    drop_no_abstract: bool = True  # PubMed records that are a title only
    drop_retracted: bool = True
    drop_retraction_notices: bool = True
    drop_errata: bool = True
    drop_expressions_of_concern: bool = True
    retracted_publication_types: tuple[str, ...] = RETRACTED_PUBLICATION_TYPES
    retraction_notice_types: tuple[str, ...] = RETRACTION_NOTICE_TYPES
    erratum_types: tuple[str, ...] = ERRATUM_TYPES
    expression_of_concern_types: tuple[str, ...] = EXPRESSION_OF_CONCERN_TYPES
    retraction_article_types: tuple[str, ...] = RETRACTION_ARTICLE_TYPES
    erratum_article_types: tuple[str, ...] = ERRATUM_ARTICLE_TYPES
    expression_of_concern_article_types: tuple[str, ...] = EXPRESSION_OF_CONCERN_ARTICLE_TYPES

    @classmethod
    def from_mapping(cls, d: Mapping | None, section: str = "filter") -> FilterConfig:
        return config_from_mapping(cls, d, section)

    def validate(self, section: str = "filter") -> None:
        if self.min_chars < 0:
            raise ConfigError(f"{section}.min_chars", f"must be >= 0, got {self.min_chars}")
        if self.min_words < 0:
            raise ConfigError(f"{section}.min_words", f"must be >= 0, got {self.min_words}")
        if not 0.0 <= self.langid_min_prob <= 1.0:
            raise ConfigError(f"{section}.langid_min_prob", f"must be between 0 and 1, got {self.langid_min_prob}")
        if self.langid_max_chars < 1:
            raise ConfigError(f"{section}.langid_max_chars", f"must be >= 1, got {self.langid_max_chars}")
        if self.keep_languages is not None:
            if not self.keep_languages:
                raise ConfigError(f"{section}.keep_languages",
                                  "is empty, which would drop everything; use null to keep all languages")
            for code in self.keep_languages:
                if code != "*" and not code.strip() or not code.replace("-", "").isalpha():
                    raise ConfigError(f"{section}.keep_languages", f"{code!r} is not a language code like 'eng'")


# ---- the filters --------------------------------------------------------------------------------


class EmptyFilter:
    name = "empty"

    def __call__(self, doc: Document) -> str | None:
        return None if doc.text and not doc.text.isspace() else "empty"


class PublicationTypeFilter:
    """Retracted articles, retraction notices, errata and expressions of concern.

    Evidence, any of: PubMed `<PublicationType>`, PubMed CommentsCorrections ref types
    (`extra["comments_corrections"]`), the JATS `article-type`, and for retracted articles a
    parser flag `extra["is_retracted"]` (PMC's retraction metadata).
    """

    name = "publication_type"

    def __init__(self, cfg: FilterConfig):
        # (reason, publication types, ref types, article types), in reporting order
        rules = []
        if cfg.drop_retracted:
            rules.append(("retracted", cfg.retracted_publication_types, RETRACTED_REF_TYPES, ()))
        if cfg.drop_retraction_notices:
            rules.append(("retraction_notice", cfg.retraction_notice_types, RETRACTION_NOTICE_REF_TYPES,
                          cfg.retraction_article_types))
        if cfg.drop_errata:
            rules.append(("erratum", cfg.erratum_types, ERRATUM_REF_TYPES, cfg.erratum_article_types))
        if cfg.drop_expressions_of_concern:
            rules.append(("expression_of_concern", cfg.expression_of_concern_types,
                          EXPRESSION_OF_CONCERN_REF_TYPES, cfg.expression_of_concern_article_types))
        self._rules = [(r, frozenset(p), frozenset(c), frozenset(a.lower() for a in at)) for r, p, c, at in rules]
        self._retracted_flag = cfg.drop_retracted

    def __call__(self, doc: Document) -> str | None:
        if self._retracted_flag and doc.extra.get("is_retracted"):
            return "retracted"
        pts = doc.publication_types
        refs = doc.extra.get("comments_corrections") or ()
        at = (doc.article_type or "").lower()
        if not pts and not refs and not at:
            return None
        for reason, ptypes, rtypes, atypes in self._rules:
            if (at and at in atypes) or any(p in ptypes for p in pts) or any(r in rtypes for r in refs):
                return reason
        return None


_LANGID = None
_LANGID_LOCK = threading.Lock()


def language_identifier():
    """py3langid's identifier with normalised probabilities, loaded once per process (~1.5 s).

    The model ships inside the py3langid wheel (`py3langid/data/model.npz.xz`): nothing is
    downloaded.
    """
    global _LANGID
    if _LANGID is None:
        with _LANGID_LOCK:
            if _LANGID is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _LANGID = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _LANGID


def detect_language(text: str, max_chars: int = 2000) -> tuple[str, float]:
    """(ISO 639-2/B code, probability) for `text`, e.g. ("eng", 0.99)."""
    lang, prob = language_identifier().classify(text[:max_chars])
    return normalize_language(lang), float(prob)


class LanguageFilter:
    """Drop documents whose language is not kept; unknown languages are detected from the text."""

    name = "language"

    def __init__(self, cfg: FilterConfig):
        self._keep = frozenset(normalize_language(c) for c in cfg.keep_languages or ())
        self._detect = cfg.detect_unknown_language
        self._min_prob = cfg.langid_min_prob
        self._max_chars = cfg.langid_max_chars
        self._english_abstract = cfg.keep_english_abstract
        self._cache: dict[str, str] = {}

    def _lang(self, code: str) -> str:
        v = self._cache.get(code)
        if v is None:
            v = self._cache[code] = normalize_language(code)
        return v

    def __call__(self, doc: Document) -> str | None:
        lang = self._lang(doc.language) if doc.language else ""
        if lang in self._keep:
            return None
        if lang not in UNKNOWN_LANGUAGES:
            # PubMed titles are English translations; with "English Abstract" the abstract is too.
            if self._english_abstract and "eng" in self._keep and "English Abstract" in doc.publication_types:
                return None
            return "non_english"
        if not self._detect:
            return None
        detected, prob = detect_language(doc.text, self._max_chars)
        if detected not in self._keep and prob >= self._min_prob:
            doc.extra["detected_language"] = detected
            return "non_english"
        return None


class NoAbstractFilter:
    """PubMed records with a title and no abstract (PMC documents have a body instead)."""

    name = "no_abstract"

    def __call__(self, doc: Document) -> str | None:
        if doc.source == "pubmed" and (not doc.abstract or doc.abstract.isspace()):
            return "no_abstract"
        return None


class LengthFilter:
    name = "too_short"

    def __init__(self, cfg: FilterConfig):
        self._min_chars = cfg.min_chars
        self._min_words = cfg.min_words

    def __call__(self, doc: Document) -> str | None:
        text = doc.text
        if len(text) < self._min_chars:
            return "too_short"
        # maxsplit bounds the work on long full texts: we only need to know if there are enough
        if self._min_words and len(text.split(None, self._min_words)) < self._min_words:
            return "too_short"
        return None


def build_filters(cfg: FilterConfig | None = None) -> list[Filter]:
    """The configured filters in the order their reasons are reported (see the module doc)."""
    cfg = cfg or FilterConfig()
    if not cfg.enabled:
        return []
    filters: list[Filter] = [EmptyFilter()]
    if cfg.drop_retracted or cfg.drop_retraction_notices or cfg.drop_errata or cfg.drop_expressions_of_concern:
        filters.append(PublicationTypeFilter(cfg))
    if cfg.keep_languages is not None and "*" not in cfg.keep_languages:
        filters.append(LanguageFilter(cfg))
    if cfg.drop_no_abstract:
        filters.append(NoAbstractFilter())
    if cfg.min_chars or cfg.min_words:
        filters.append(LengthFilter(cfg))
    return filters


def apply_filters(doc: Document, filters: list[Filter]) -> str | None:
    """The first drop reason, or None when every filter keeps the document."""
    for f in filters:
        reason = f(doc)
        if reason is not None:
            return reason
    return None
