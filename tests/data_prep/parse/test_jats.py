"""JATS/NLM full-text parsing: generated articles and every real sample in ../shared/data/pmc."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
from pathlib import Path

import pytest

from data_prep.document import Document
from data_prep.parse.jats import JatsOptions, iter_jats, language_code, license_code, normalize_pmcid
from tests.conftest import SHARED_DATA, shared_path

MML = 'xmlns:mml="http://www.w3.org/1998/Math/MathML"'
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'

ARTICLE = f"""<article {MML} {XLINK} article-type="research-article" xml:lang="EN">
<front>
 <journal-meta><journal-title-group><journal-title>Journal of Tests</journal-title></journal-title-group></journal-meta>
 <article-meta>
  <article-id pub-id-type="pmid">123</article-id>
  <article-id pub-id-type="pmc">456</article-id>
  <article-id pub-id-type="doi">10.1000/j.test.1</article-id>
  <title-group><article-title>Lipases of <italic>M. tuberculosis</italic></article-title></title-group>
  <pub-date pub-type="collection"><year>2011</year></pub-date>
  <pub-date pub-type="epub"><day>1</day><month>2</month><year>2012</year></pub-date>
  <permissions><copyright-statement>© The authors</copyright-statement>
   <license license-type="open-access" xlink:href="http://creativecommons.org/licenses/by-nc/3.0/">
    <license-p>Open access under CC BY-NC.</license-p></license></permissions>
  <abstract abstract-type="teaser"><p>Teaser text.</p></abstract>
  <abstract>
   <sec><title>Background</title><p>Why it matters.</p></sec>
   <sec><title>Results</title><p>What we found.</p></sec>
  </abstract>
  <abstract abstract-type="summary"><title>Author Summary</title><p>Plain words.</p></abstract>
 </article-meta>
</front>
<body>
 <sec id="s1"><title>Introduction</title>
  <p>TB kills <xref ref-type="bibr" rid="b1">[1]</xref>. Lipases matter <xref ref-type="bibr" rid="b2">[2]</xref>&#8211;<xref ref-type="bibr" rid="b4">[4]</xref>, as
   <xref ref-type="bibr" rid="b5">Smith et al. (2010)</xref> showed (<xref ref-type="bibr" rid="b6">Jones, 2011</xref>; <xref ref-type="bibr" rid="b7">Lee, 2012</xref>).
   Growth slows<sup><xref ref-type="bibr" rid="b8">8</xref>,<xref ref-type="bibr" rid="b9">9</xref></sup> at
   <inline-formula><mml:math><mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math></inline-formula> mM
   (<xref ref-type="fig" rid="f1">Figure 1</xref>)<fn id="fn1"><p>A footnote.</p></fn>.
   <fig id="f1"><label>Figure 1.</label><caption><title>Growth curve.</title><p>Cells grew.</p></caption><graphic xlink:href="f1.tif"/></fig>
  </p>
  <sec><title>Subsection</title>
   <p>Nested text with <ext-link ext-link-type="uri" xlink:href="http://x.org">http://x.org</ext-link>.</p>
   <list list-type="bullet"><list-item><p>first item</p></list-item><list-item><p>second item</p></list-item></list>
   <disp-formula id="e1"><label>(1)</label><mml:math><mml:mfrac><mml:mi>a</mml:mi><mml:mi>b</mml:mi></mml:mfrac></mml:math></disp-formula>
  </sec>
 </sec>
 <sec><title>Results</title>
  <table-wrap id="t1"><label>Table 1</label><caption><p>Activities.</p></caption>
   <table><thead><tr><th>Protein</th><th>U/mg</th></tr></thead><tbody><tr><td>LipC</td><td>0.12</td></tr></tbody></table>
   <table-wrap-foot><fn><p>n.d., not detected.</p></fn></table-wrap-foot></table-wrap>
  <p>Final paragraph.</p>
  <supplementary-material id="s1"><label>Table S1</label><caption><p>Primers used.</p></caption></supplementary-material>
 </sec>
</body>
<back>
 <ack><p>We thank the funders.</p></ack>
 <fn-group><fn><p>Competing interests: none.</p></fn></fn-group>
 <ref-list><title>References</title>
  <ref id="b1"><element-citation publication-type="journal"><person-group><name><surname>Tiss</surname><given-names>A</given-names></name></person-group>
   <article-title>Inhibition of lipase</article-title><source>J Lipid</source><year>2009</year><volume>58</volume><fpage>41</fpage><lpage>47</lpage></element-citation></ref>
  <ref id="b2"><mixed-citation>Doe J (2001) A mixed citation. Nature 1: 2.</mixed-citation></ref>
 </ref-list>
</back>
<sub-article article-type="article-commentary" id="SA1"><front-stub><title-group><article-title>Decision letter</article-title></title-group></front-stub>
 <body><p>The reviewers liked it.</p></body></sub-article>
</article>"""

ALL_ON = JatsOptions(**{f.name: True for f in dataclasses.fields(JatsOptions)})


def write(tmp_path: Path, name: str, text: str, gz: bool = False) -> Path:
    p = tmp_path / name
    data = text.encode()
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.fixture
def article_path(tmp_path: Path) -> Path:
    doctype = ('<?xml version="1.0"?>\n<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and '
               'Interchange DTD v1.0 20120330//EN" "JATS-archivearticle1.dtd">\n')
    return write(tmp_path, "a.nxml.gz", doctype + ARTICLE, gz=True)


def test_default_text_layout(article_path):
    (d,) = list(iter_jats(article_path, file_order=3))
    paras = d.text.split("\n\n")
    assert paras[:5] == [
        "Lipases of M. tuberculosis",
        "Background: Why it matters.",
        "Results: What we found.",
        "Author Summary",
        "Plain words.",
    ]
    assert paras[5] == "Introduction"
    assert paras[6] == (
        "TB kills. Lipases matter, as Smith et al. (2010) showed (Jones, 2011; Lee, 2012). "
        "Growth slows at x^2 mM (Figure 1)."
    )
    assert paras[7:] == [
        "Subsection", "Nested text with http://x.org.", "first item\nsecond item", "a/b",
        "Results", "Final paragraph.",
    ]
    assert d.abstract == "Background: Why it matters.\n\nResults: What we found."
    assert "Teaser" not in d.text  # a teaser is not the abstract when a real one exists


def test_default_exclusions(article_path):
    (d,) = list(iter_jats(article_path))
    for excluded in ("Growth curve", "Activities", "LipC", "footnote", "Competing", "Tiss", "Decision letter",
                     "reviewers", "Primers", "We thank", "[1]", "(1)"):
        assert excluded not in d.text, excluded


def test_metadata(article_path):
    (d,) = list(iter_jats(article_path, file_order=3))
    assert (d.id, d.pmid, d.pmcid, d.doi) == ("pmcid:PMC456", "123", "PMC456", "10.1000/j.test.1")
    assert (d.source, d.license, d.language, d.year) == ("pmc", "CC BY-NC", "eng", 2012)
    assert (d.article_type, d.journal, d.file_order) == ("research-article", "Journal of Tests", 3)
    assert d.file == str(article_path)


@pytest.mark.parametrize(
    "option, present",
    [
        ("include_figures", ["Figure 1: Growth curve. Cells grew."]),
        ("include_tables", ["Table 1: Activities.", "Protein | U/mg\nLipC | 0.12", "n.d., not detected."]),
        ("include_supplementary", ["Table S1: Primers used."]),
        ("include_footnotes", ["A footnote.", "Competing interests: none."]),
        ("include_references", ["References", "Tiss A. Inhibition of lipase. J Lipid. 2009. 58. 41-47.",
                                "Doe J (2001) A mixed citation. Nature 1: 2."]),
        ("include_subarticles", ["Decision letter", "The reviewers liked it."]),
    ],
)
def test_each_option_adds_only_its_part(article_path, option, present):
    (base,) = list(iter_jats(article_path))
    (d,) = list(iter_jats(article_path, JatsOptions(**{option: True})))
    added = [p for p in d.text.split("\n\n") if p not in base.text.split("\n\n")]
    assert added == present
    assert d.abstract == base.abstract and d.id == base.id


def test_float_inside_paragraph_follows_it(article_path):
    (d,) = list(iter_jats(article_path, JatsOptions(include_figures=True)))
    paras = d.text.split("\n\n")
    assert paras[paras.index("Figure 1: Growth curve. Cells grew.") - 1].startswith("TB kills.")


def _wrap(articles: str, root: str = "pmc-articleset") -> str:
    return f"<{root}>{articles}</{root}>"


def test_articleset_ids_fall_back_to_doi_then_sha1(tmp_path):
    a = ARTICLE
    no_pmc = re.sub(r'<article-id pub-id-type="pmc">456</article-id>', "", a)
    no_ids = re.sub(r"<article-id [^>]*>[^<]*</article-id>", "", a)
    p = write(tmp_path, "set.xml", _wrap(a + no_pmc + no_ids))
    got = list(iter_jats(p))
    assert [d.id for d in got[:2]] == ["pmcid:PMC456", "doi:10.1000/j.test.1"]
    assert got[2].id == "sha1:" + hashlib.sha1(got[2].text.encode()).hexdigest()
    assert got[2].pmid is None and got[2].doi is None


def test_oai_pmh_namespaced_jats(tmp_path):
    ns_article = ARTICLE.replace("<article ", '<article xmlns="https://jats.nlm.nih.gov/ns/archiving/1.3/" ', 1)
    oai = (f'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><GetRecord><record><metadata>{ns_article}'
           "</metadata></record></GetRecord></OAI-PMH>")
    (d,) = list(iter_jats(write(tmp_path, "oai.xml", oai)))
    assert d.id == "pmcid:PMC456" and d.title == "Lipases of M. tuberculosis" and "Final paragraph." in d.text


@pytest.mark.parametrize(
    "lang, code", [(None, "eng"), ("EN", "eng"), ("pt", "por"), ("es", "spa"), ("pt-BR", "por"), ("fr", "fre"),
                   ("de", "ger"), ("zh", "chi"), ("ger", "ger")],
)
def test_language_code(lang, code):
    assert language_code(lang) == code


@pytest.mark.parametrize(
    "candidates, code",
    [
        (["http://creativecommons.org/licenses/by/2.0"], "CC BY"),
        (["https://creativecommons.org/licenses/by-nc-nd/4.0/"], "CC BY-NC-ND"),
        (["http://creativecommons.org/licenses/by-sa/3.0/igo"], "CC BY-SA"),
        (["http://creativecommons.org/licenses/by-nc-sa/4.0/"], "CC BY-NC-SA"),
        (["https://creativecommons.org/publicdomain/zero/1.0/"], "CC0"),
        (["open-access", "This is an Open Access article distributed under the terms of the Creative Commons "
                         "Attribution Non-Commercial License"], "CC BY-NC"),
        (["Creative Commons Attribution-NoDerivs License"], "CC BY-ND"),
        (["Distributed under CC BY-NC-SA 4.0."], "CC BY-NC-SA"),
        (["This work is in the public domain."], None),
        ([], None),
    ],
)
def test_license_code(candidates, code):
    assert license_code(candidates) == code


def test_license_without_cc_keeps_trimmed_raw_text(tmp_path):
    a = re.sub(r"<license .*?</license>", "<license><license-p>  Free to read,\n  not to reuse. </license-p></license>",
               ARTICLE, flags=re.S)
    (d,) = list(iter_jats(write(tmp_path, "x.xml", a)))
    assert d.license == "Free to read, not to reuse."
    none = re.sub(r"<license .*?</license>", "", ARTICLE, flags=re.S)
    (d,) = list(iter_jats(write(tmp_path, "y.xml", none)))
    assert d.license is None  # a copyright statement alone is not a licence


def test_normalize_pmcid():
    assert normalize_pmcid("3166277") == normalize_pmcid("PMC3166277") == normalize_pmcid(" pmc3166277 ") == "PMC3166277"
    assert normalize_pmcid("n/a") is None


# ---- the real samples ----------------------------------------------------------------------

def _files(sub: str) -> list[str]:
    folder = SHARED_DATA / "pmc" / sub
    return sorted(p.name for p in folder.iterdir() if p.name != "PROVENANCE.md") if folder.exists() else ["<missing>"]


REAL = [("pmc_oa", n) for n in _files("pmc_oa")] + [("publisher_jats", n) for n in _files("publisher_jats")]
_CACHE: dict[tuple, list[Document]] = {}


def parsed(sub: str, name: str, options: JatsOptions | None = None) -> list[Document]:
    key = (sub, name, dataclasses.astuple(options) if options else None)  # config dataclasses are mutable: key by value
    if key not in _CACHE:
        _CACHE[key] = list(iter_jats(shared_path("pmc", sub, name), options))
    return _CACHE[key]


def one(sub: str, name: str, options: JatsOptions | None = None) -> Document:
    (d,) = parsed(sub, name, options)
    return d


_JUNK = re.compile(r'</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+="[^"]*")*\s*/?>|&(?:[A-Za-z]+|#\d+|#x[0-9a-fA-F]+);|\x00')
_NUMERIC_CITATION = re.compile(r"\[\d+(?:[,–-]\s*\d+)*\]")


def test_real_file_counts():
    assert len(_files("pmc_oa")) == 20 and len(_files("publisher_jats")) == 49


@pytest.mark.parametrize("sub, name", REAL)
def test_real_file(sub, name):
    (d,) = parsed(sub, name)
    path = shared_path("pmc", sub, name)
    assert d.file == str(path) and d.source == "pmc"
    assert not _JUNK.search(d.text), _JUNK.search(d.text)
    assert "DOI: http" not in d.text
    assert d.text == d.text.strip() and "  " not in d.text and "\n\n\n" not in d.text
    assert re.fullmatch(r"[a-z]{3}", d.language)
    assert d.article_type
    if sub == "pmc_oa":
        assert re.fullmatch(r"pmcid:PMC\d+", d.id) and d.id == f"pmcid:{d.pmcid}"
    else:
        assert d.id == f"doi:{d.doi}" and d.doi.startswith("10.")
    if d.abstract:
        assert d.abstract in d.text
    # with everything switched on the text only grows, and the main abstract does not change
    full = one(sub, name, ALL_ON)
    assert len(full.text) >= len(d.text) and full.abstract == d.abstract and full.id == d.id
    assert not _JUNK.search(full.text)


def test_plos_pmc_article():
    d = one("pmc_oa", "pone.0046493.nxml")
    assert (d.pmcid, d.pmid, d.doi) == ("PMC3460867", "23029536", "10.1371/journal.pone.0046493")
    assert d.title.startswith("MmPPOX Inhibits Mycobacterium tuberculosis Lipolytic Enzymes")
    assert d.license == "CC BY" and d.year == 2012 and d.journal == "PLoS ONE"
    assert "\n\nIntroduction\n\nAccording to the World Health Organization (2011; http://www.who.int/tb/en/)," in d.text
    assert "fight this disease are urgently needed. It has been shown" in d.text  # "[1]" dropped
    assert not _NUMERIC_CITATION.search(d.text)
    assert "Substrate specificity of recombinant Lip-HSL proteins" not in d.text  # a table caption
    tables = one("pmc_oa", "pone.0046493.nxml", JatsOptions(include_tables=True))
    assert "Table 1: Substrate specificity of recombinant Lip-HSL proteins." in tables.text


def test_structured_abstract_labels_from_bmc():
    d = one("pmc_oa", "cc11003.nxml")
    assert d.id == "pmcid:PMC3363814" and d.article_type == "abstract"
    assert "Introduction\n\nThe aim was to determine the incidence of acute respiratory distress syndrome" in d.text


def test_licences_and_types_across_publishers():
    assert one("pmc_oa", "PMC4303521.nxml.gz").license == "CC BY-NC-ND"
    assert one("pmc_oa", "PMC3821097.nxml.gz").license == "CC BY-NC"
    assert one("pmc_oa", "PMC6949206.xml").license == "CC BY"  # ali:license_ref, JATS 1.3
    assert one("pmc_oa", "6605965a.nxml").license is None  # copyright statement only
    assert one("publisher_jats", "scielo_0034-7094-rba-69-03-0227.xml").license == "CC BY-NC-ND"
    efetch = one("pmc_oa", "biopython_efetch_pmc.xml")
    assert (efetch.id, efetch.pmid, efetch.article_type, efetch.license) == ("pmcid:PMC8435807", "34527728", "correction", "CC BY-NC")
    assert one("publisher_jats", "plos_journal.pcbi.0030158.xml").article_type == "retraction"
    old = one("pmc_oa", "1472-6831-8-11.nxml")  # NLM Archiving DTD 2.3
    assert (old.pmcid, old.pmid, old.license) == ("PMC2329613", "18405359", "CC BY")


def test_teaser_abstract_is_not_the_abstract():
    d = one("pmc_oa", "PMC3098455.nxml.gz")
    assert d.abstract and d.abstract.split("\n\n")[0].startswith("Background:")


def test_languages_from_xml_lang():
    # Portuguese/Spanish articles with an English translation sub-article are read in English ...
    assert one("publisher_jats", "scielo_0034-8910-rsp-48-2-0225.xml").language == "eng"
    assert one("publisher_jats", "scielo_0034-8910-rsp-48-2-0322.xml").language == "eng"
    # ... one without (an erratum) keeps its own language, for the language filter to judge
    assert one("publisher_jats", "scielo_0034-8910-rsp-48-2-0366.xml").language == "por"
    assert one("publisher_jats", "scielo_0034-8910-rsp-48-2-0331.xml").language == "eng"
    assert one("publisher_jats", "plos_journal.pbio.0020188.xml").language == "eng"  # "EN"


def test_elife_subarticles_and_references_only_when_configured():
    d = one("publisher_jats", "elife00005.xml")
    assert d.title == "Molecular architecture of human polycomb repressive complex 2"
    assert "\n\neLife digest\n\nProtein complexes—stable structures" in d.text
    assert "Decision letter" not in d.text and "Author response" not in d.text
    assert "The Transform Class in SPARX and EMAN2" not in d.text
    with_subs = one("publisher_jats", "elife00005.xml", JatsOptions(include_subarticles=True))
    assert "\n\nDecision letter\n\neLife posts the editorial decision letter" in with_subs.text
    assert "Thank you for choosing to send your work entitled “Molecular architecture" in with_subs.text
    refs = one("publisher_jats", "elife00005.xml", JatsOptions(include_references=True))
    assert "Baldwin PR, Penczek PA. The Transform Class in SPARX and EMAN2. J Struct Biol. 2007. 157. 250-61." in refs.text


def test_meeting_abstract_collection_is_all_subarticles():
    d = one("pmc_oa", "PMC3747765.nxml.gz")
    assert "gnotobiotic" not in d.text
    full = one("pmc_oa", "PMC3747765.nxml.gz", JatsOptions(include_subarticles=True))
    assert "Establishment of gnotobiotic miniature swine for xenotransplantation research program" in full.text


def test_scielo_portuguese_article_is_read_from_its_english_translation():
    d = one("publisher_jats", "scielo_0034-8910-rsp-48-2-0225.xml")
    english = "their understanding of their bodily reactions to the challenges of work."
    assert d.language == "eng" and d.text.endswith(english)
    assert d.title.startswith("The impact of stress on the health of sugar cane c")
    assert d.abstract and d.abstract in d.text and " de " not in d.abstract  # the English abstract, not the Portuguese
    assert d.id == "doi:10.1590/S0034-8910.2014048004798"  # the article's own ids
    full = one("publisher_jats", "scielo_0034-8910-rsp-48-2-0225.xml", JatsOptions(include_subarticles=True))
    assert full.text == d.text  # the translation is the document, not appended a second time
    # an English article with a Portuguese translation stays as it is
    assert one("publisher_jats", "scielo_0034-7094-rba-69-03-0227.xml").title.startswith("Implementing a chronic pain")


def test_labelled_abstract_sections_get_one_colon():
    """'<title>Background:</title>' is not 'Background::' (PMC2994229, PMC3821097); a '::' in prose stays."""
    assert "\n\nBackground: Oral co" in one("pmc_oa", "6605965a.nxml").text
    assert "\n\nPurpose: To eval" in one("pmc_oa", "PMC3821097.nxml.gz").text
    for sub, name in REAL:
        d = one(sub, name)
        assert not re.search(r"^\w[\w ]*\s?::", d.text, re.M), (name, d.text[:200])
    assert "UNC-104::YFP" in one("publisher_jats", "elife00133.xml").text  # a fusion protein, not a label


def test_no_document_ends_on_an_empty_heading():
    ends = {name: one(sub, name).text.rsplit("\n\n", 1)[-1] for sub, name in REAL}
    empty = {n: e for n, e in ends.items()
             if re.fullmatch(r"(?i)supplementary (?:material|materials|information)s?|supporting information", e)}
    assert not empty
    assert one("pmc_oa", "pone.0046493.nxml").text.endswith(".")  # ended on "Supporting Information" before
    sup = one("pmc_oa", "pone.0046493.nxml", JatsOptions(include_supplementary=True))
    assert "\n\nSupporting Information\n\n" in sup.text  # with its captions the heading has content


def test_bmc_back_matter_sections_are_dropped():
    for name in ("1472-6831-8-11.nxml", "1471-2180-11-174.nxml", "PMC2836310.nxml.gz"):
        t = one("pmc_oa", name).text
        assert not re.search(r"(?m)^(Authors' contributions|Competing interests|Pre-publication history)$", t), name
        assert "read and approved the final manuscript" not in t, name
    # the words in prose are kept: only headings of those sections are back matter
    assert "Competing interests arise" in one("publisher_jats", "plos_journal.pbio.1001044.xml").text


def test_citation_leftovers_are_removed():
    acta = one("pmc_oa", "PMC2970367.nxml.gz").text
    assert "▶" not in acta and "Rahbaek et al. (1999)." in acta
    assert "▶" not in one("pmc_oa", "PMC4257438.nxml.gz").text
    bmc = one("pmc_oa", "1471-2180-11-174.nxml").text
    assert "[, their" not in bmc and "and tKCN [their figure five]." in bmc


def test_mathml_and_tex_rendered_in_real_articles():
    pcbi = one("publisher_jats", "plos_journal.pcbi.1004079.xml")
    assert "S_2(A, B) = (2ab)/(a+b) where a is the number of features" in pcbi.text
    elife = one("publisher_jats", "elife-14093-v1.xml")
    assert "E(x) = ∑_(q ∈ Q)E^(q)(x)" in elife.text
    assert "glass transition temperature (T_g) value" in one("pmc_oa", "PMC7417471.nxml").text  # tex-math


def test_author_year_citations_are_kept():
    d = one("publisher_jats", "elife-14093-v1.xml")
    assert "Douady and Couder, 1996b" in d.text


def test_no_body_articles():
    poa = one("publisher_jats", "elife_poa_e06828.xml")
    assert poa.abstract and poa.text == f"{poa.title}\n\n{poa.abstract}"
