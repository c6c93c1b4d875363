"""Document filters: every drop reason on made-up documents and on real PubMed/JATS records."""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest

from common.config import ConfigError
from data_prep.document import Document
from data_prep.parse.jats import iter_jats, language_code
from data_prep.parse.pubmed import iter_pubmed
from data_prep.text.filters import (
    FilterConfig,
    LanguageFilter,
    apply_filters,
    build_filters,
    detect_language,
)
from data_prep.text.languages import normalize_language
from tests.conftest import shared_path
from tests.data_prep.conftest import prep_config

ABSTRACT = ("Background: we measured serum cortisol in 120 adults with type 2 diabetes and compared it "
            "with matched controls over twelve months of follow-up in three clinics.")


def doc(**kw) -> Document:
    base = dict(id="pmid:1", text="A title\n\n" + ABSTRACT, source="pubmed", title="A title", abstract=ABSTRACT,
                pmid="1", language="eng", publication_types=("Journal Article",))
    base.update(kw)
    return Document(**base)


def reason(d: Document, **cfg) -> str | None:
    return apply_filters(d, build_filters(FilterConfig(**cfg)))


def test_a_normal_abstract_is_kept():
    assert reason(doc()) is None


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty(text):
    assert reason(doc(text=text, abstract="")) == "empty"


def test_too_short_by_chars_and_by_words():
    assert reason(doc(text="x" * 99)) == "too_short"
    assert reason(doc(text="x" * 100 + " y")) == "too_short"  # 100 chars but 2 words
    assert reason(doc(text="abcdefgh " * 15)) is None  # 135 chars, 15 words
    assert reason(doc(text="abcdefghij " * 14)) == "too_short"  # 154 chars, 14 words
    assert reason(doc(text="word " * 3), min_chars=0, min_words=0) is None


def test_publication_type_reasons():
    assert reason(doc(publication_types=("Journal Article", "Retracted Publication"))) == "retracted"
    assert reason(doc(publication_types=("Retraction of Publication",))) == "retraction_notice"
    assert reason(doc(publication_types=("Published Erratum",))) == "erratum"
    assert reason(doc(publication_types=("Expression of Concern",))) == "expression_of_concern"
    # the corrected version of an article is the good copy: kept
    assert reason(doc(publication_types=("Corrected and Republished Article",))) is None


def test_comments_corrections_and_parser_flags():
    assert reason(doc(extra={"comments_corrections": ["Cites", "RetractionIn"]})) == "retracted"
    assert reason(doc(extra={"comments_corrections": ["RetractionOf"]})) == "retraction_notice"
    assert reason(doc(extra={"comments_corrections": ["ErratumFor"]})) == "erratum"
    assert reason(doc(extra={"comments_corrections": ["ErratumIn", "CommentIn"]})) is None  # has an erratum: fine
    assert reason(doc(extra={"is_retracted": True}, source="pmc")) == "retracted"


def test_jats_article_types():
    pmc = dict(source="pmc", id="pmcid:PMC1", publication_types=())
    assert reason(doc(article_type="retraction", **pmc)) == "retraction_notice"
    assert reason(doc(article_type="partial-retraction", **pmc)) == "retraction_notice"
    assert reason(doc(article_type="correction", **pmc)) == "erratum"
    assert reason(doc(article_type="expression-of-concern", **pmc)) == "expression_of_concern"
    assert reason(doc(article_type="research-article", **pmc)) is None


def test_each_publication_rule_can_be_switched_off():
    pt = ("Retracted Publication",)
    assert reason(doc(publication_types=pt), drop_retracted=False) is None
    assert reason(doc(publication_types=("Published Erratum",)), drop_errata=False) is None
    assert reason(doc(article_type="retraction"), drop_retraction_notices=False) is None
    assert reason(doc(publication_types=("Letter",)), erratum_types=("Letter",)) == "erratum"


def test_non_english_by_metadata():
    assert reason(doc(language="fre")) == "non_english"
    assert reason(doc(language="fre"), keep_languages=("eng", "fr")) is None  # 639-1 codes accepted
    assert reason(doc(language="fre"), keep_languages=None) is None
    assert reason(doc(language="fre"), keep_languages=("*",)) is None
    assert reason(doc(language="EN")) is None
    ea = doc(language="rus", publication_types=("Journal Article", "English Abstract"))
    assert reason(ea) is None  # the default keeps a non-English record whose abstract is English
    assert reason(ea, keep_english_abstract=False) == "non_english"
    other = doc(language="spa", extra={"english_abstract": True})  # an English OtherAbstract (parser's hint)
    assert reason(other) is None and reason(other, keep_english_abstract=False) == "non_english"


def test_unknown_language_falls_back_to_py3langid_offline():
    pt = ("O objetivo deste estudo foi avaliar a prevalência de hipertensão arterial em adultos "
          "residentes em áreas urbanas do município de São Paulo, Brasil, entre 2010 e 2012.")
    assert detect_language(pt)[0] == "por"
    assert reason(doc(language="", text=pt, source="pmc")) == "non_english"
    assert reason(doc(language="und", text=pt)) == "non_english"
    assert reason(doc(language="", text="A title\n\n" + ABSTRACT, source="pmc")) is None
    assert reason(doc(language="", text=pt, source="pmc"), detect_unknown_language=False) is None
    # too little evidence (numbers only): never dropped on a guess
    assert LanguageFilter(FilterConfig())(doc(language="", text="12 34 56 78 90 " * 10)) is None


def test_no_abstract_only_for_pubmed():
    assert reason(doc(abstract="", text="A fairly long title " * 10)) == "no_abstract"
    assert reason(doc(abstract="", text="A fairly long title " * 10), drop_no_abstract=False) is None
    assert reason(doc(abstract="", source="pmc", id="pmcid:PMC1", text="Body text " * 30)) is None


def test_first_reason_wins_in_the_documented_order():
    names = [f.name for f in build_filters(FilterConfig())]
    assert names == ["empty", "publication_type", "language", "no_abstract", "too_short"]
    # a short, non-English retraction notice without abstract is reported as the notice
    d = doc(language="fre", abstract="", text="Retraction.", publication_types=("Retraction of Publication",))
    assert reason(d) == "retraction_notice"
    assert build_filters(FilterConfig(enabled=False)) == []


def test_normalize_language():
    assert [normalize_language(c) for c in ("en", "EN", "en-US", "pt_BR", "eng", "zh")] == [
        "eng", "eng", "eng", "por", "eng", "chi"]


def test_languages_one_table_for_parsers_and_filters():
    # Norwegian: PubMed writes "nor" only, so Bokmål and Nynorsk (JATS xml:lang, py3langid) map to it.
    assert [normalize_language(c) for c in ("nb", "nn", "no", "NB-no", "nor")] == ["nor"] * 5
    for code in ("en", "nb", "nn", "pt-BR", "zh", "fre"):
        assert language_code(code) == normalize_language(code)


def test_filter_config_from_mapping():
    c = prep_config(filter={"min_chars": 50, "keep_languages": ["eng", "fre"]}).filter
    assert c.min_chars == 50 and list(c.keep_languages) == ["eng", "fre"]
    assert prep_config(filter={"keep_languages": None}).filter.keep_languages is None
    every = prep_config(filter={"keep_languages": ["*"]}).filter  # "*" keeps every language too
    assert not any(isinstance(f, LanguageFilter) for f in build_filters(every))
    # ("ten", "often": OmegaConf reads "10" as 10 and 1 as true, as YAML and the command line mean them)
    for bad, key in [({"min_chars": -1}, "filter.min_chars"), ({"min_chars": "ten"}, "filter.min_chars"),
                     ({"min_char": 10}, "filter.min_char"), ({"keep_languages": []}, "filter.keep_languages"),
                     ({"keep_languages": "eng"}, "filter.keep_languages"),
                     ({"langid_min_prob": 2}, "filter.langid_min_prob"),
                     ({"drop_errata": "often"}, "filter.drop_errata")]:
        with pytest.raises(ConfigError) as e:
            prep_config(filter=bad)
        assert e.value.key == key


# ---- real records ---------------------------------------------------------------------------------


@cache
def _pubmed(name: str) -> dict[str, Document]:
    return {d.id: d for d in iter_pubmed(shared_path("pubmed", name)) if isinstance(d, Document)}


@pytest.mark.parametrize("pmid, expected", [
    ("11543891", "retracted"),  # "Retracted Publication"
    ("8655018", "retracted"),  # Polish and retracted: the retraction is the more useful count
    ("11600210", "retraction_notice"),  # "Retraction of Publication"
    ("10389168", None),  # Russian, "English Abstract": English title and abstract, kept by default
    ("5757641", "non_english"),  # Georgian, title only
    ("12501715", "non_english"),  # Chinese
])
def test_real_pubmed_2019_sample(pmid, expected):
    d = _pubmed("pubmedsample_2019.split-a.xml.gz")[f"pmid:{pmid}"]
    assert reason(d) == expected


def test_real_pubmed_2016_erratum_and_no_abstract():
    docs = _pubmed("medline16n0902_excerpt.split-a.xml.gz")
    assert "Published Erratum" in docs["pmid:26407471"].publication_types
    assert reason(docs["pmid:26407471"]) == "erratum"
    title_only = [d for d in docs.values() if not d.abstract and d.language == "eng" and not d.publication_types[1:]]
    assert title_only and all(reason(d) == "no_abstract" for d in title_only)


def test_real_pubmed_counts_by_reason():
    counts = Counter(reason(d) for d in _pubmed("pubmedsample_2019.split-a.xml.gz").values())
    assert counts["retracted"] == 2 and counts["retraction_notice"] == 1
    # 11 records list a non-English language first; one is retracted (counted there), one is "und",
    # whose English title passes the text check, and 3 have an English abstract (kept by default)
    assert counts["non_english"] == 6
    und = _pubmed("pubmedsample_2019.split-a.xml.gz")["pmid:14817685"]
    assert und.language == "und" and reason(und) == "no_abstract"
    assert counts[None] > 40


@pytest.mark.parametrize("name, expected", [
    ("plos_journal.pcbi.0030158.xml", "retraction_notice"),  # article-type="retraction"
    ("plos_journal.pone.0097541.xml", "erratum"),  # article-type="correction"
    ("elife07586.xml", "erratum"),  # correction without xml:lang
    ("scielo_0034-8910-rsp-48-2-0366.xml", "erratum"),  # Portuguese correction: the notice wins
    ("scielo_0034-8910-rsp-48-2-0206.xml", None),  # English research article
    ("plos_journal.pone.0058242.xml", None),
])
def test_real_jats_articles(name, expected):
    docs = list(iter_jats(shared_path("pmc", "publisher_jats", name)))
    assert reason(docs[0]) == expected


def test_real_portuguese_jats_article_is_non_english():
    # SciELO's erratum has no English translation (the research articles do, and are read from it)
    pt = [d for d in iter_jats(shared_path("pmc", "publisher_jats", "scielo_0034-8910-rsp-48-2-0366.xml"))]
    assert pt[0].language == "por" and reason(pt[0]) == "erratum"
    lang = LanguageFilter(FilterConfig())
    assert lang(pt[0]) == "non_english"
    translated = next(iter_jats(shared_path("pmc", "publisher_jats", "scielo_0034-8910-rsp-48-2-0232.xml")))
    assert translated.language == "eng" and reason(translated) is None
    # the text check alone (no language metadata) finds the Portuguese of the original article
    from lxml import etree
    root = etree.parse(str(shared_path("pmc", "publisher_jats", "scielo_0034-8910-rsp-48-2-0232.xml"))).getroot()
    portuguese = " ".join("".join(root.find("front/article-meta/abstract").itertext()).split())
    assert lang(Document(id="x", text=portuguese, source="pmc", language="")) == "non_english"
