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

import functools
import threading
from dataclasses import dataclass, field
from typing import Protocol

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from data_prep.document import Document
from data_prep.text.languages import normalize_language

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

class Filter(Protocol):
    """Returns None to keep a document, or the reason it is dropped."""

    name: str

    def __call__(self, doc: Document) -> str | None: ...


@dataclass
class FilterConfig:
    """`cfg.filter`. Lists of type strings default to the module constants above."""

    enabled: bool = True
    min_chars: int = 100
    min_words: int = 15
    # ISO 639-2/B codes (two-letter codes are accepted and mapped); null or ["*"] keeps all.
    keep_languages: list[str] | None = field(default_factory=lambda: ["eng"])
    detect_unknown_language: bool = True  # py3langid on documents with no usable language
    langid_min_prob: float = 0.8  # drop only when the detector is at least this sure
    langid_max_chars: int = 2000  # classify this much of the text (enough; keeps it fast)
    # Keep non-English PubMed records whose abstract is English (typed "English Abstract", or an
    # English OtherAbstract): their title is NLM's English translation, so the text is English.
    keep_english_abstract: bool = True
    drop_no_abstract: bool = True  # PubMed records that are a title only
    drop_retracted: bool = True
    drop_retraction_notices: bool = True
    drop_errata: bool = True
    drop_expressions_of_concern: bool = True
    retracted_publication_types: list[str] = field(default_factory=lambda: list(RETRACTED_PUBLICATION_TYPES))
    retraction_notice_types: list[str] = field(default_factory=lambda: list(RETRACTION_NOTICE_TYPES))
    erratum_types: list[str] = field(default_factory=lambda: list(ERRATUM_TYPES))
    expression_of_concern_types: list[str] = field(default_factory=lambda: list(EXPRESSION_OF_CONCERN_TYPES))
    retraction_article_types: list[str] = field(default_factory=lambda: list(RETRACTION_ARTICLE_TYPES))
    erratum_article_types: list[str] = field(default_factory=lambda: list(ERRATUM_ARTICLE_TYPES))
    expression_of_concern_article_types: list[str] = field(
        default_factory=lambda: list(EXPRESSION_OF_CONCERN_ARTICLE_TYPES))


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


_LANGID_LOCK = threading.Lock()


def language_identifier() -> LanguageIdentifier:
    """py3langid's identifier with normalised probabilities, loaded once per process (~1.5 s).

    A process-wide cache of a constant (the model file shipped inside the py3langid wheel,
    `py3langid/data/model.npz.xz`; nothing is downloaded), not state of a run. The lock makes
    threads that ask at the same time wait for the one load.
    """
    with _LANGID_LOCK:
        return _load_language_identifier()


@functools.cache
def _load_language_identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


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
            if self._english_abstract and "eng" in self._keep and (
                    "English Abstract" in doc.publication_types or doc.extra.get("english_abstract")):
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
    """The configured filters in the order their reasons are reported (see the module doc).

    Built once per run (the pipeline keeps them in its per-run map context), never cached here."""
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
