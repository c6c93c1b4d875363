"""Stream PubMed/MEDLINE XML into `Document`s and `Deletion`s, in constant memory.

Handles the current baseline/update/EFetch format (`PubmedArticleSet` of `PubmedArticle`,
`PubmedBookArticle` and `DeleteCitation`), the legacy pre-2017 baseline (`MedlineCitationSet` of
`MedlineCitation`), and a bare `PubmedArticle`/`PubmedBookArticle` fragment. What is kept and why
is in docs/parsing.md.

Speed matters (the baseline is ~36M records): iterparse reports only the record elements
(`tag=`), fields are read with direct child lookups, text without markup takes a fast path, and
each record plus its earlier siblings is freed once read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from data_prep.document import Deletion, Document
from data_prep.errors import InputFileError
from data_prep.parse.xml_safety import ParseLimits, iterparse_safe, root_name
from data_prep.parse.xml_text import element_text

_YEAR = re.compile(r"(1[6-9]|20)\d\d")
# Values of AbstractText/@Label that carry no information.
_NO_LABEL = frozenset({"", "UNLABELLED", "UNASSIGNED"})


def iter_pubmed(path: str | Path, file_order: int = 0,
                limits: ParseLimits | None = None) -> Iterator[Document | Deletion]:
    """Yield a Document per citation and a Deletion per PMID in `<DeleteCitation>`, in file order.

    Raises InputFileError (possibly after some records were yielded) when the file is not a
    usable PubMed XML file, or a record is past `limits` (default `ParseLimits()`).
    """
    file = str(path)
    root = root_name(path)
    if root == "MedlineCitationSet":
        tags: tuple[str, ...] = ("MedlineCitation", "DeleteCitation")
    elif root in ("PubmedArticleSet", "PubmedArticle", "PubmedBookArticle", "MedlineCitation"):
        tags = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")
        if root == "MedlineCitation":
            tags = ("MedlineCitation",)
    else:
        raise InputFileError(path, f"root element <{root}> is not PubMed XML; give this file to the matching parser")

    for _, el in iterparse_safe(path, tag=tags, prolog_checked=True, limits=limits):
        tag = el.tag
        if tag == "PubmedArticle":
            mc = pubmed_data = None
            for c in el:
                if c.tag == "MedlineCitation":
                    mc = c
                elif c.tag == "PubmedData":
                    pubmed_data = c
            doc = _article(mc, pubmed_data, file, file_order)
            if doc is not None:
                yield doc
        elif tag == "MedlineCitation":
            doc = _article(el, None, file, file_order)
            if doc is not None:
                yield doc
        elif tag == "PubmedBookArticle":
            doc = _book(el, file, file_order)
            if doc is not None:
                yield doc
        else:  # DeleteCitation
            for p in el.iterchildren("PMID"):
                pmid = (p.text or "").strip()
                if pmid:
                    yield Deletion(pmid=pmid, file=file, file_order=file_order)
        _free(el)


def _free(el: etree._Element) -> None:
    """Drop a processed record and everything before it, so memory stays flat."""
    el.clear(keep_tail=True)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _child(el: etree._Element | None, tag: str) -> etree._Element | None:
    # iterchildren(tag) runs in C; find() goes through ElementPath in Python (~5x slower per call).
    return next(el.iterchildren(tag), None) if el is not None else None


def _abstract(abstract: etree._Element | None) -> str:
    """Abstract sections, one paragraph each, as 'LABEL: text' when labelled."""
    if abstract is None:
        return ""
    paras = []
    for at in abstract.iterchildren("AbstractText"):
        text = element_text(at)
        if not text:
            continue
        label = at.get("Label")
        if label:
            label = label.strip()
            if label.upper() not in _NO_LABEL:
                text = f"{label}: {text}"
        paras.append(text)
    return "\n\n".join(paras)


def _year(pub_date: etree._Element | None) -> int | None:
    if pub_date is None:
        return None
    for c in pub_date:
        if c.tag == "Year":
            y = (c.text or "").strip()
            if y.isdigit():
                return int(y)
        elif c.tag == "MedlineDate":
            m = _YEAR.search(c.text or "")  # "1998 Dec-1999 Jan" -> 1998
            if m:
                return int(m.group(0))
    return None


def _pmid(el: etree._Element | None) -> tuple[str, int]:
    if el is None:
        return "", 1
    v = el.get("Version")
    return (el.text or "").strip(), int(v) if v and v.isdigit() else 1


def _child_texts(parent: etree._Element | None, tag: str) -> tuple[str, ...]:
    if parent is None:
        return ()
    return tuple(t for t in (" ".join(e.text.split()) for e in parent.iterchildren(tag) if e.text) if t)


def _mesh(mesh_list: etree._Element | None) -> tuple[str, ...]:
    if mesh_list is None:
        return ()
    names = []
    for mh in mesh_list:
        # DescriptorName comes first in a MeshHeading (DTD); look it up only if it does not.
        d = mh[0] if len(mh) else None
        if d is None or d.tag != "DescriptorName":
            d = _child(mh, "DescriptorName")
        if d is not None and d.text:
            names.append(" ".join(d.text.split()))
    return tuple(names)


def _ids(pubmed_data: etree._Element | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    id_list = _child(pubmed_data, "ArticleIdList")
    if id_list is not None:
        for a in id_list:
            kind, val = a.get("IdType"), (a.text or "").strip()
            if kind and val and kind not in ids:
                ids[kind] = val
    return ids


def _ref_types(cc_list: etree._Element | None) -> list[str]:
    if cc_list is None:
        return []
    return list(dict.fromkeys(t for t in (c.get("RefType") for c in cc_list) if t))


def _doc(
    pmid: str, version: int, title: str, abstract: str, file: str, file_order: int, **fields
) -> Document | None:
    if not pmid:
        return None
    text = f"{title}\n\n{abstract}" if title and abstract else title or abstract
    return Document(
        id=f"pmid:{pmid}", text=text, source="pubmed", title=title, abstract=abstract, pmid=pmid,
        version=version, file=file, file_order=file_order, **fields,
    )


def _article(
    mc: etree._Element | None, pubmed_data: etree._Element | None, file: str, file_order: int
) -> Document | None:
    if mc is None:
        return None
    # One pass over the children of MedlineCitation and of Article (instead of a find() per field).
    pmid_el = art = mesh_list = cc_list = None
    other_abstracts: list[etree._Element] = []
    for c in mc:
        tag = c.tag
        if tag == "PMID":
            pmid_el = c
        elif tag == "OtherAbstract":
            other_abstracts.append(c)
        elif tag == "Article":
            art = c
        elif tag == "MeshHeadingList":
            mesh_list = c
        elif tag == "CommentsCorrectionsList":
            cc_list = c
    pmid, version = _pmid(pmid_el)
    if art is None:
        return _doc(pmid, version, "", "", file, file_order)

    title_el = vernacular = abstract_el = journal_el = types_el = article_date = None
    language = ""
    doi = None
    for c in art:
        tag = c.tag
        if tag == "ArticleTitle":
            title_el = c
        elif tag == "Abstract":
            abstract_el = c
        elif tag == "Journal":
            journal_el = c
        elif tag == "Language":
            if not language and c.text:
                language = c.text.strip().lower()  # the first one
        elif tag == "PublicationTypeList":
            types_el = c
        elif tag == "ELocationID":
            if doi is None and c.get("EIdType") == "doi" and c.get("ValidYN", "Y") == "Y" and c.text:
                doi = c.text.strip()
        elif tag == "ArticleDate":
            article_date = c
        elif tag == "VernacularTitle":
            vernacular = c

    title = element_text(title_el)
    if not title:  # some non-English records only have the original-language title
        title = element_text(vernacular)

    journal, year = "", None
    if journal_el is not None:
        for c in journal_el:
            if c.tag == "Title":
                journal = " ".join((c.text or "").split())
            elif c.tag == "JournalIssue":
                year = _year(_child(c, "PubDate"))
    if year is None:
        year = _year(article_date)

    ids = _ids(pubmed_data)
    pmcid = ids.get("pmc")
    if cc_list is None and pubmed_data is not None:
        cc_list = _child(pubmed_data, "CommentsCorrectionsList")  # not used by NLM today, but allowed
    ref_types = _ref_types(cc_list)

    abstract = _abstract(abstract_el)
    extra: dict = {"comments_corrections": ref_types} if ref_types else {}
    if language not in ("", "eng"):
        english = next((o for o in other_abstracts if (o.get("Language") or "").lower() in ("eng", "en")), None)
        if english is not None:
            # A non-English article with an English OtherAbstract: the English abstract is the text
            # (ArticleTitle is already NLM's English translation); the language filter keeps it.
            abstract = _abstract(english)
            extra["english_abstract"] = True
    return _doc(
        pmid, version, title, abstract, file, file_order,
        pmcid=pmcid.upper() if pmcid else None,
        doi=doi or ids.get("doi"),
        language=language,
        publication_types=_child_texts(types_el, "PublicationType"),
        mesh=_mesh(mesh_list),
        journal=journal,
        year=year,
        extra=extra,
    )


def _book(el: etree._Element, file: str, file_order: int) -> Document | None:
    bd = _child(el, "BookDocument")
    if bd is None:
        return None
    pmid, version = _pmid(_child(bd, "PMID"))
    book = _child(bd, "Book")
    book_title = element_text(_child(book, "BookTitle"))
    # A chapter has its own ArticleTitle; a whole book (like GeneReviews) only the BookTitle.
    title = element_text(_child(bd, "ArticleTitle")) or book_title
    doi = _ids(bd).get("doi") or _ids(_child(el, "PubmedBookData")).get("doi")
    lang = _child(bd, "Language")
    return _doc(
        pmid, version, title, _abstract(_child(bd, "Abstract")), file, file_order,
        doi=doi,
        language=(lang.text or "").strip().lower() if lang is not None else "",
        publication_types=_child_texts(bd, "PublicationType"),
        journal=book_title,
        year=_year(_child(book, "PubDate")),
        extra={"book": True},
    )
