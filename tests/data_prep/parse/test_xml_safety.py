"""Secure XML reading: hostile DOCTYPEs refused, no DTD fetch, gzip by magic, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from lxml import etree

from data_prep.errors import InputFileError
from data_prep.parse.formats import detect_format
from data_prep.parse.jats import iter_jats
from data_prep.parse.pubmed import iter_pubmed
from data_prep.parse.xml_safety import iterparse_safe, read_prolog, root_name
from data_prep.parse.xml_text import element_text, math_text

ARTICLE = (
    "<PubmedArticle><MedlineCitation><PMID Version=\"1\">{pmid}</PMID><Article>"
    "<ArticleTitle>Title {pmid}</ArticleTitle><Abstract><AbstractText>Abstract {pmid}.</AbstractText></Abstract>"
    "<Language>eng</Language></Article></MedlineCitation></PubmedArticle>\n"
)
NCBI_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)


def pubmed_xml(n: int = 3, doctype: str = NCBI_DOCTYPE) -> bytes:
    body = "".join(ARTICLE.format(pmid=1000 + i) for i in range(n))
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}<PubmedArticleSet>\n{body}</PubmedArticleSet>\n'.encode()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>
<ArticleTitle>&lol3;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE article [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<article><front><article-meta><title-group><article-title>&xxe;</article-title></title-group>
</article-meta></front></article>
"""

PARAMETER_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE article [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<article><front/></article>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, PARAMETER_XXE], ids=["billion_laughs", "xxe", "parameter_xxe"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_entity_declarations_are_refused(tmp_path, data, gz):
    p = write(tmp_path, "hostile.xml", gzip.compress(data) if gz else data)
    with pytest.raises(InputFileError, match="declares entities") as exc:
        list(iter_pubmed(p)) if b"PubmedArticleSet" in data else list(iter_jats(p))
    assert exc.value.path == str(p)
    with pytest.raises(InputFileError, match="declares entities"):
        detect_format(p)


# The internal subset is "closed" early by a `]>` inside a comment, and an element-like string in the
# same comment looks like the root: a naive prolog scanner stops there and never sees the ENTITY.
COMMENT_BYPASS = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [ <!-- ]> <PubmedArticleSet> -->
 <!ENTITY a "aaaaaaaaaa"> <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c '<!-- ]> -->&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>
<ArticleTitle>&c;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_comment_in_the_doctype_does_not_hide_entities_from_the_pre_check(tmp_path, gz):
    p = write(tmp_path, "sneaky.xml", gzip.compress(COMMENT_BYPASS) if gz else COMMENT_BYPASS)
    with pytest.raises(InputFileError, match="declares entities"):
        read_prolog(p)  # the first line of defence, before lxml reads anything
    assert root_name(write(tmp_path, "ok.xml", b'<!DOCTYPE x [ <!-- ]> <fake> --> ]>\n<real/>')) == "real"
    assert root_name(write(tmp_path, "q.xml", b"<!DOCTYPE x SYSTEM 'a]>b.dtd'>\n<real/>")) == "real"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_utf16_with_a_bom_is_read(tmp_path, encoding, gz):
    bom = b"\xff\xfe" if encoding == "utf-16-le" else b"\xfe\xff"
    text = pubmed_xml(3).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').replace("Title 1001", "Étude 1001 µM")
    data = bom + text.encode(encoding)
    p = write(tmp_path, "utf16.xml", gzip.compress(data) if gz else data)
    assert detect_format(p) == "pubmed" and read_prolog(p)[0].startswith(b"<?xml")
    docs = list(iter_pubmed(p))
    assert [d.id for d in docs] == ["pmid:1000", "pmid:1001", "pmid:1002"] and docs[1].title == "Étude 1001 µM"


def test_reasons_never_quote_the_file(tmp_path):
    secret = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1\n"
    with pytest.raises(InputFileError, match=r"not XML \(it starts with text") as e:
        detect_format(write(tmp_path, "passwd.xml", secret))
    assert "root" not in e.value.reason and "daemon" not in e.value.reason
    with pytest.raises(InputFileError, match="not XML .*binary") as e:
        detect_format(write(tmp_path, "bin.xml", b"\x00\x01secret\x02"))
    assert "secret" not in e.value.reason
    bad_utf8 = pubmed_xml(2).replace(b"Title 1001", b"Title \xff\xfe 1001")
    with pytest.raises(InputFileError, match="malformed XML at line") as e:
        list(iter_pubmed(write(tmp_path, "latin.xml", bad_utf8)))
    assert "0xFF" not in e.value.reason.upper() and "\n" not in e.value.reason


def test_external_dtd_is_never_loaded(tmp_path):
    # A DTD on disk that defines an entity: if it were loaded, its value would appear in the text.
    dtd = write(tmp_path, "evil.dtd", b'<!ENTITY secret "LEAKED-FROM-DTD">')
    doc = (
        f'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet SYSTEM "{dtd.as_uri()}">\n'
        "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>7</PMID><Article>"
        "<ArticleTitle>A &secret; title</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    ).encode()
    (d,) = list(iter_pubmed(write(tmp_path, "x.xml", doc)))
    assert "LEAKED" not in d.text
    assert d.title == "A title"  # the unknown entity is dropped, the file still parses


def test_ncbi_doctype_parses_offline(tmp_path):
    # The public DTD URL is never fetched (no_network, load_dtd=False): this works without internet.
    docs = list(iter_pubmed(write(tmp_path, "ok.xml", pubmed_xml(3))))
    assert [d.id for d in docs] == ["pmid:1000", "pmid:1001", "pmid:1002"]


def test_html_entity_from_an_unloaded_dtd_becomes_its_character(tmp_path):
    doc = (
        b'<?xml version="1.0"?>\n<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and '
        b'Interchange DTD v1.0 20120330//EN" "JATS-archivearticle1.dtd">\n'
        b"<article><front><article-meta><article-id pub-id-type=\"pmc\">12</article-id><title-group>"
        b"<article-title>Dose&nbsp;10&hellip;20 &amp; more &#x000a9;</article-title></title-group>"
        b"</article-meta></front></article>"
    )
    (d,) = list(iter_jats(write(tmp_path, "a.nxml", doc)))
    assert d.title == "Dose 10\u202620 & more \u00a9"  # nbsp is whitespace, collapsed to a space
    assert "&" not in d.text.replace(" & ", "")


def test_undefined_entity_without_doctype_is_malformed(tmp_path):
    p = write(tmp_path, "bad.xml", b"<PubmedArticleSet>\n<PubmedArticle>&nbsp;</PubmedArticle>\n</PubmedArticleSet>")
    with pytest.raises(InputFileError, match=r"malformed XML at line 2"):
        list(iter_pubmed(p))


def test_gzip_is_detected_by_magic_bytes_not_name(tmp_path):
    gz_named_xml = write(tmp_path, "really_gzip.xml", gzip.compress(pubmed_xml(2)))
    xml_named_gz = write(tmp_path, "really_plain.xml.gz", pubmed_xml(2))
    assert len(list(iter_pubmed(gz_named_xml))) == 2
    assert len(list(iter_pubmed(xml_named_gz))) == 2
    assert detect_format(gz_named_xml) == detect_format(xml_named_gz) == "pubmed"


def test_truncated_gzip_is_an_input_error(tmp_path):
    data = gzip.compress(pubmed_xml(400))
    p = write(tmp_path, "cut.xml.gz", data[: len(data) // 2])
    with pytest.raises(InputFileError, match="truncated or corrupt gzip") as exc:
        list(iter_pubmed(p))
    assert "re-download" in str(exc.value)


def test_gzip_with_a_bad_checksum_is_an_input_error(tmp_path):
    data = bytearray(gzip.compress(pubmed_xml(3)))
    data[-8] ^= 0xFF  # the CRC-32 in the trailer: the XML itself is intact
    p = write(tmp_path, "crc.xml.gz", bytes(data))
    with pytest.raises(InputFileError, match="truncated or corrupt gzip"):
        list(iter_pubmed(p))


def test_gzip_with_only_a_header_is_an_input_error(tmp_path):
    p = write(tmp_path, "stub.gz", gzip.compress(pubmed_xml(1))[:12])
    with pytest.raises(InputFileError, match="gzip"):
        detect_format(p)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "file is empty"),
        (b"   \n\n", "file is empty"),
        (gzip.compress(b""), "file is empty"),
        (b"PMID- 12345\nTI  - a MEDLINE text record\n", "not XML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not XML"),
        (b'<?xml version="1.0"?>\n<!-- only a comment -->\n', "no root element"),
    ],
    ids=["empty", "blank", "empty_gzip", "medline_text", "binary", "no_root"],
)
def test_unusable_files_get_one_clear_error(tmp_path, data, message):
    p = write(tmp_path, "in.xml", data)
    with pytest.raises(InputFileError, match=message) as exc:
        list(iter_pubmed(p))
    assert str(exc.value).startswith(str(p) + ": ")
    assert "\n" not in str(exc.value)


def test_malformed_xml_names_the_line_and_may_come_mid_file(tmp_path):
    good = pubmed_xml(2).decode().replace("</PubmedArticleSet>\n", "")
    bad = good + "<PubmedArticle><MedlineCitation><PMID>9</PMID></Medline>\n</PubmedArticleSet>\n"
    p = write(tmp_path, "broken.xml", bad.encode())
    seen = []
    with pytest.raises(InputFileError, match=r"malformed XML at line 6: .*mismatch") as exc:
        for d in iter_pubmed(p):
            seen.append(d.id)
    assert seen == ["pmid:1000", "pmid:1001"]  # records before the damage were yielded
    assert exc.value.path == str(p)


def test_unterminated_file_is_malformed(tmp_path):
    p = write(tmp_path, "cut.xml", pubmed_xml(3)[:-40])
    with pytest.raises(InputFileError, match="malformed XML"):
        list(iter_pubmed(p))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        detect_format(tmp_path / "nope.xml.gz")
    with pytest.raises(InputFileError, match="directory"):
        list(iter_pubmed(tmp_path))


def test_wrong_parser_for_the_root_is_refused(tmp_path):
    jats = write(tmp_path, "a.nxml", b"<article><front/></article>")
    pubmed = write(tmp_path, "p.xml", pubmed_xml(1))
    with pytest.raises(InputFileError, match="not PubMed XML"):
        list(iter_pubmed(jats))
    with pytest.raises(InputFileError, match="not JATS"):
        list(iter_jats(pubmed))


@pytest.mark.parametrize(
    "head, root, fmt",
    [
        (NCBI_DOCTYPE + "<PubmedArticleSet>", "PubmedArticleSet", "pubmed"),
        ("<!DOCTYPE MedlineCitationSet PUBLIC \"x\"\n  \"y.dtd\">\n<MedlineCitationSet>", "MedlineCitationSet", "pubmed"),
        ("<PubmedArticle>", "PubmedArticle", "pubmed"),
        ("<!-- EFetch --><?pi x?>\n<PubmedBookArticle>", "PubmedBookArticle", "pubmed"),
        ("<article xmlns:mml=\"http://www.w3.org/1998/Math/MathML\" article-type=\"x\">", "article", "jats"),
        ("<!DOCTYPE pmc-articleset PUBLIC \"-//NLM//DTD ARTICLE SET 2.0//EN\" \"x.dtd\"><pmc-articleset>", "pmc-articleset", "jats"),
        ("<OAI-PMH xmlns=\"http://www.openarchives.org/OAI/2.0/\">", "OAI-PMH", "jats"),
        ("<x:article xmlns:x=\"urn:x\">", "article", "jats"),
        ("<html>", "html", "unknown"),
    ],
)
def test_detect_format_from_the_root(tmp_path, head, root, fmt):
    body = f'<?xml version="1.0"?>\n{head}'.encode() + b"<unfinished>" * 5000  # only the prolog is read
    p = write(tmp_path, "f.xml", gzip.compress(body))
    assert root_name(p) == root
    assert detect_format(p) == fmt
    prolog = read_prolog(p)[0]
    assert prolog.startswith(b"<?xml") and len(prolog) <= len(body) - 5000 * len(b"<unfinished>")


def test_iterparse_safe_yields_requested_tags(tmp_path):
    p = write(tmp_path, "p.xml", pubmed_xml(4))
    tags = [el.tag for _, el in iterparse_safe(p, tag="PMID")]
    assert tags == ["PMID"] * 4


# ---- text rendering ------------------------------------------------------------------------

MML = 'xmlns:mml="http://www.w3.org/1998/Math/MathML"'


def _math(inner: str, attrs: str = "") -> str:
    el = etree.fromstring(f"<mml:math {MML} {attrs}>{inner}</mml:math>")
    return math_text(el)


@pytest.mark.parametrize(
    "inner, text",
    [
        ("<mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup>", "x^2"),
        ("<mml:msub><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msub>", "x_2"),
        ("<mml:mfrac><mml:mi>a</mml:mi><mml:mi>b</mml:mi></mml:mfrac>", "a/b"),
        ("<mml:mfrac><mml:mrow><mml:mi>a</mml:mi><mml:mo>+</mml:mo><mml:mn>1</mml:mn></mml:mrow><mml:mi>b</mml:mi></mml:mfrac>", "(a+1)/b"),
        ("<mml:msubsup><mml:mtext>TeO</mml:mtext><mml:mn>3</mml:mn><mml:mrow><mml:mn>2</mml:mn><mml:mo>-</mml:mo></mml:mrow></mml:msubsup>", "TeO_3^(2-)"),
        ("<mml:mi>p</mml:mi><mml:mo>&lt;</mml:mo><mml:mn>0.05</mml:mn>", "p < 0.05"),
        ("<mml:mover><mml:mi>V</mml:mi><mml:mo>˙</mml:mo></mml:mover>", "V\u0307"),
        ("<mml:msqrt><mml:mi>x</mml:mi><mml:mo>+</mml:mo><mml:mi>y</mml:mi></mml:msqrt>", "√(x+y)"),
        ("<mml:semantics><mml:mi>z</mml:mi><mml:annotation>LaTeX z</mml:annotation></mml:semantics>", "z"),
    ],
)
def test_mathml_renders_as_linear_text(inner, text):
    assert _math(inner) == text


def test_mathml_prefers_sensible_alttext():
    inner = "<mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup>"
    assert _math(inner, 'alttext="x squared"') == "x squared"
    assert _math(inner, 'alttext="eq1.gif"') == "x^2"  # a file name is not a rendering
    assert _math(inner, 'alttext="  "') == "x^2"


def test_element_text_flattens_inline_markup():
    el = etree.fromstring(f"<AbstractText>IL-1<i>β</i> at 5 km·h<sup>-1</sup>, CO<sub>2</sub> <u>up</u> <b>and</b>\n  <mml:math {MML}><mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math></AbstractText>")
    assert element_text(el) == "IL-1β at 5 km·h-1, CO2 up and x^2"
