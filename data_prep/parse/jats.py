"""Stream JATS / NLM full-text XML (PMC OA, publishers) into `Document`s.

A file holds one `<article>`, a `<pmc-articleset>` of several (PMC EFetch), or JATS inside an
OAI-PMH response; each `<article>` is read, turned into a Document and freed. Works across the
NLM 2.3 ... JATS 1.3 tag sets (the elements used here did not change). What goes into the text
and what is left out by default (tables, figures, references, supplementary material,
footnotes, sub-articles) is described in docs/parsing.md and switched by `JatsOptions`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from data_prep.document import Document
from data_prep.errors import InputFileError
from data_prep.parse.formats import JATS_ROOTS
from data_prep.parse.xml_safety import ParseLimits, iterparse_safe, root_name
from data_prep.parse.xml_text import DEFAULT_HANDLERS, MATH_TAGS, collect, normalize_ws, strip_escaped_tags
from data_prep.text.languages import normalize_language

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"


@dataclass
class JatsOptions:
    """`cfg.jats`: what besides title, abstract and body paragraphs goes into `Document.text` (all off
    by default). Also the schema of that config section, so it is a plain (mutable) dataclass."""

    include_tables: bool = False  # table-wrap: label, caption, one line per row ("a | b | c"), table footnotes
    include_figures: bool = False  # fig: label and caption
    include_references: bool = False  # back/ref-list: one paragraph per reference
    include_supplementary: bool = False  # supplementary-material: label and caption
    include_footnotes: bool = False  # fn in paragraphs and back/fn-group
    include_subarticles: bool = False  # sub-article/response: decision letters, replies, translations


# abstract-type values that are not the article's abstract (used only when nothing else exists).
_MINOR_ABSTRACTS = frozenset({"graphical", "teaser", "toc", "precis", "web-summary", "short", "highlights", "web-teaser"})

# A bibliographic xref whose text is only a number marker ("1", "[2]", "3-5", "4a") is dropped;
# author-year citations ("Smith et al., 2012") are prose and kept. See docs/parsing.md.
_NUMERIC_CITE = re.compile(r"^[\[(]?\s*(\d+[a-z]?(\s*[,;–\-−]\s*\d+[a-z]?)*)?\s*[\])]?$")
# Cross-references that read as part of a sentence ("see Figure 1", "Table 2", "Eq. 3") are kept.
_PROSE_XREFS = frozenset({"fig", "table", "supplementary-material", "disp-formula", "sec", "app", "boxed-text",
                          "chem", "scheme", "statement", "list", "plate", "other", "custom", "kwd", "award"})
_MARKER = re.compile(r"^[\[(]?[a-zA-Z*†‡§¶#]{1,2}[\])]?$")  # footnote markers: "a", "*", "†"
_CITE = "\x00"  # sentinel left where a numeric citation was, removed with its brackets afterwards
_CITE_GROUP = re.compile(r"\s*[\[(]\s*\x00(?:[\s,;–\-−]*\x00)*\s*[\])]")
# "[[39], their figure five]" or "(12; see ...)": the removed citation opened a bracket that goes on
# in prose; keep the bracket and the prose, not the leftover ", " ("[their figure five]").
_CITE_LEAD = re.compile(r"([\[(])\s*(?:[\[(]\s*)?\x00(?:[\s,;–\-−]*\x00)*\s*(?:[\])]\s*)?[,;]\s*")
# Acta Cryst. E marks author-year citations with a link glyph: "(Spek, 2009<xref> ▶</xref>)".
_LINK_GLYPHS = re.compile(r"^[\s\u25b6\u25ba\u25b8\u25b7\u27a4\u2192]+$")
# Back matter that some publishers (BMC) put in the body as ordinary sections: not article prose.
_BACK_MATTER_TITLE = re.compile(
    r"^(?:authors?['’]?s?['’]? contributions?|competing (?:financial )?interests?|conflicts? of interests?|"
    r"declaration of (?:competing )?interests?|pre-?publication history)\.?$", re.I)
_BACK_MATTER_TYPES = frozenset({"COI-statement", "author-contribution", "author-contributions", "competing-interests"})
_CITE_RUN = re.compile(r"\s*\x00(?:[\s,;–\-−]*\x00)*")

# eLife ends every abstract, figure and section with "DOI: http://dx.doi.org/..."; that is not prose.
_DOI_LINE = re.compile(r"^DOI:?\s*\S+$", re.I)

_FLOATS = {"fig": "include_figures", "fig-group": "include_figures", "table-wrap": "include_tables",
           "table-wrap-group": "include_tables", "supplementary-material": "include_supplementary"}
# Elements whose content never becomes text (inline or as a block).
_SILENT = frozenset({"graphic", "inline-graphic", "media", "object-id", "sec-meta", "label", "title", "pub-id",
                     "related-article", "related-object", "processing-meta", "alt-text", "long-desc"})


def iter_jats(path: str | Path, options: JatsOptions | None = None, file_order: int = 0,
              limits: ParseLimits | None = None) -> Iterator[Document]:
    """Yield one Document per `<article>` in the file (the JATS root, a pmc-articleset or OAI-PMH).

    Raises InputFileError (possibly after some articles were yielded) when the file is not
    usable JATS XML, or an article is past `limits` (default `ParseLimits()`).
    """
    opts = options or JatsOptions()
    root = root_name(path)
    if root not in JATS_ROOTS:
        raise InputFileError(path, f"root element <{root}> is not JATS; give this file to the matching parser")
    renderer = _Renderer(opts)
    for _, el in iterparse_safe(path, tag="{*}article", prolog_checked=True, limits=limits):
        _strip_namespace(el)
        yield renderer.document(el, str(path), file_order)
        el.clear(keep_tail=True)
        parent = el.getparent()
        if parent is not None:
            while el.getprevious() is not None:
                del parent[0]


def _strip_namespace(article: etree._Element) -> None:
    """OAI-PMH serves JATS in a default namespace; drop it so the same lookups work everywhere."""
    tag = article.tag
    if not tag.startswith("{"):
        return
    prefix = tag[: tag.index("}") + 1]
    for el in article.iter():
        t = el.tag
        if isinstance(t, str) and t.startswith(prefix):
            el.tag = t[len(prefix):]


def _local_text(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def normalize_pmcid(value: str) -> str | None:
    digits = value.strip().upper().removeprefix("PMC").strip()
    return f"PMC{digits}" if digits.isdigit() else None


def language_code(lang: str | None) -> str:
    """ISO 639-2/B as PubMed writes it ('eng') from xml:lang ('en', 'EN', 'pt-BR').

    An article without xml:lang is English: the JATS/NLM DTDs default the attribute to "en".
    """
    return normalize_language(lang) if lang else "eng"


_CC_URL = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z\-]+)", re.I)
_CC_CODE = re.compile(r"\bCC[\s\-_]?(0|BY(?:[\s\-_]?(?:NC|SA|ND))*)\b", re.I)


def _cc_from_parts(parts: set[str]) -> str:
    order = [p for p in ("NC", "SA", "ND") if p in parts]
    return "CC BY" + ("-" + "-".join(order) if order else "")


def license_code(candidates: list[str]) -> str | None:
    """A Creative Commons code ("CC BY", "CC BY-NC-ND", "CC0", ...) from license URLs/texts, if any says one."""
    for c in candidates:
        m = _CC_URL.search(c)
        if m:
            kind, code = m.group(1).lower(), m.group(2).lower()
            if kind == "publicdomain":
                return "CC0" if code.startswith("zero") else None
            parts = {p.upper() for p in code.split("-")}
            if "BY" in parts:
                return _cc_from_parts(parts)
    for c in candidates:
        m = _CC_CODE.search(c)
        if m:
            code = m.group(1).upper()
            if code == "0":
                return "CC0"
            return _cc_from_parts(set(re.split(r"[\s\-_]+", code[2:].strip(" -_"))) if code != "BY" else set())
        low = c.lower()
        i = low.find("creative commons attribution")
        if i >= 0:
            window = re.sub(r"[^a-z]", "", low[i + 28 : i + 110])
            parts = set()
            if "noncommercial" in window:
                parts.add("NC")
            if "sharealike" in window:
                parts.add("SA")
            if "noderiv" in window:
                parts.add("ND")
            return _cc_from_parts(parts)
        if "cc0" in low or "public domain dedication" in low:
            return "CC0"
    return None


def _clean(parts: list[str]) -> str:
    s = "".join(parts)
    if _CITE in s:
        s = _CITE_RUN.sub("", _CITE_GROUP.sub("", _CITE_LEAD.sub(r"\1", s)))
    s = strip_escaped_tags(s)
    return " ".join(s.split())


class _Renderer:
    """Turns one `<article>` into a Document; holds the handlers built from the options."""

    def __init__(self, opts: JatsOptions):
        self.opts = opts
        self._floats: list[str] = []
        h = dict(DEFAULT_HANDLERS)
        h.update({t: self._silent for t in _SILENT})
        h.update({t: self._float_inline for t in _FLOATS})
        h.update({
            "xref": self._xref,
            "fn": self._fn_inline,
            "alternatives": self._alternatives,
            "tex-math": self._tex,
            "disp-formula": self._formula,
            "inline-formula": self._formula,
            "break": lambda el, out: out.append(" "),
            "list": self._list_inline,
            "ref-list": self._silent,
            "name": self._name,
        })
        self.handlers = h

    # ---- inline ------------------------------------------------------------------------------

    def _silent(self, el: etree._Element, out: list) -> None:
        pass

    def _render(self, el: etree._Element, out: list) -> None:
        """Render `el` itself (not its tail) through its handler, or as plain content."""
        h = self.handlers.get(el.tag)
        if h is not None:
            h(el, out)
        else:
            collect(el, out, self.handlers)

    def inline(self, el: etree._Element | None) -> str:
        if el is None:
            return ""
        out: list[str] = []
        collect(el, out, self.handlers)
        return _clean(out)

    def _xref(self, el: etree._Element, out: list) -> None:
        kind = el.get("ref-type") or ""
        if kind not in _PROSE_XREFS:  # citations, footnote and affiliation markers (and invalid types)
            t = normalize_ws("".join(el.itertext()))
            if _NUMERIC_CITE.match(t) or (kind != "bibr" and _MARKER.match(t)) or _LINK_GLYPHS.match(t):
                out.append(_CITE)
                return
        collect(el, out, self.handlers)

    def _name(self, el: etree._Element, out: list) -> None:
        # <name><surname>Tiss</surname><given-names>A</given-names></name> has no space inside.
        out.append(" ".join(t for t in (_local_text(c) for c in el if isinstance(c.tag, str)) if t))

    def _fn_inline(self, el: etree._Element, out: list) -> None:
        if self.opts.include_footnotes:
            t = self.inline(el)
            if t:
                self._floats.append(t)

    def _float_inline(self, el: etree._Element, out: list) -> None:
        # A figure/table inside a paragraph becomes its own paragraph after it (when included).
        if getattr(self.opts, _FLOATS[_tag(el)]):
            self._floats.extend(self._float(el))

    def _alternatives(self, el: etree._Element, out: list) -> None:
        # The same content in several forms: MathML if there is one, else TeX, else the first.
        kids = [c for c in el if isinstance(c.tag, str)]
        for pick in (lambda c: c.tag in MATH_TAGS, lambda c: c.tag == "tex-math", lambda c: c.tag not in _SILENT):
            for c in kids:
                if pick(c):
                    self._render(c, out)
                    return

    def _tex(self, el: etree._Element, out: list) -> None:
        tex = "".join(el.itertext())
        m = re.search(r"\\begin\{document\}(.*)\\end\{document\}", tex, re.S)
        if m:
            tex = m.group(1)
        out.append(normalize_ws(tex.replace("$", "")))

    def _formula(self, el: etree._Element, out: list) -> None:
        # A display formula is set apart from the words around it; an inline one sits between them.
        pad = " " if el.tag != "inline-formula" else ""
        out.append(pad)
        if el.text:
            out.append(el.text)
        for c in el:
            if isinstance(c.tag, str) and c.tag != "label":
                self._render(c, out)
            if c.tail:
                out.append(c.tail)
        out.append(pad)

    def _list_inline(self, el: etree._Element, out: list) -> None:
        out.append(" " + " ".join(self.inline(i) for i in el.iterfind("list-item")) + " ")

    # ---- blocks ------------------------------------------------------------------------------

    def _para(self, el: etree._Element, paras: list[str]) -> None:
        saved, self._floats = self._floats, []
        t = self.inline(el)
        if t and not _DOI_LINE.match(t):
            paras.append(t)
        paras.extend(self._floats)
        self._floats = saved

    def blocks(self, container: etree._Element | list[etree._Element], paras: list[str]) -> None:
        """Append the paragraphs of `container`'s children (sections, paragraphs, lists, ...) to `paras`."""
        for child in container:
            tag = child.tag
            if not isinstance(tag, str) or tag in _SILENT:
                continue
            if tag == "p":
                self._para(child, paras)
            elif tag in ("sec", "boxed-text", "disp-quote", "statement", "app", "glossary"):
                title = self.inline(child.find("title"))
                if tag == "sec" and (child.get("sec-type") in _BACK_MATTER_TYPES or _BACK_MATTER_TITLE.match(title)):
                    continue  # "Authors' contributions", "Competing interests", "Pre-publication history"
                inner: list[str] = []
                self.blocks(child, inner)
                if inner:  # a heading over nothing ("Supplementary Material" when floats are off) is dropped
                    paras.extend([title, *inner] if title else inner)
            elif tag == "list":
                items = [i for i in (self._item(li) for li in child.iterfind("list-item")) if i]
                if items:
                    paras.append("\n".join(items))
            elif tag == "def-list":
                items = [self._def_item(d) for d in child.iterfind("def-item")]
                if any(items):
                    paras.append("\n".join(i for i in items if i))
            elif tag in ("disp-formula", "disp-formula-group"):
                out: list[str] = []
                self._formula(child, out)
                t = _clean(out)
                if t:
                    paras.append(t)
            elif tag in _FLOATS:
                if getattr(self.opts, _FLOATS[tag]):
                    paras.extend(self._float(child))
            elif tag == "fn-group":
                if self.opts.include_footnotes:
                    paras.extend(t for t in (self.inline(fn) for fn in child.iterfind("fn")) if t)
            elif tag in ("ref-list", "ack", "notes", "bio", "fn"):
                continue  # back matter handled (or left out) by the caller
            elif any(c.tag in ("p", "sec") for c in child):
                self.blocks(child, paras)
            else:
                self._para(child, paras)

    def _item(self, li: etree._Element) -> str:
        return " ".join(t for t in (self.inline(c) if c.tag != "list" else self._nested(c) for c in li if isinstance(c.tag, str)) if t) or self.inline(li)

    def _nested(self, lst: etree._Element) -> str:
        return " ".join(self._item(li) for li in lst.iterfind("list-item"))

    def _def_item(self, d: etree._Element) -> str:
        term, defn = self.inline(d.find("term")), self.inline(d.find("def"))
        return f"{term}: {defn}" if term and defn else term or defn

    def _caption(self, el: etree._Element) -> str:
        label = self.inline(el.find("label"))
        cap = el.find("caption")
        text = ""
        if cap is not None:
            saved, self._floats = self._floats, []
            text = " ".join(t for t in (self.inline(c) for c in cap if isinstance(c.tag, str)) if t)
            self._floats = saved
        label = label.rstrip(".: ")
        return f"{label}: {text}" if label and text else label or text

    def _float(self, el: etree._Element) -> list[str]:
        tag = _tag(el)
        if tag in ("fig-group", "table-wrap-group"):
            out = [self._caption(el)] if el.find("caption") is not None else []
            for c in el:
                if isinstance(c.tag, str) and c.tag in _FLOATS:
                    out.extend(self._float(c))
            return [t for t in out if t]
        out = [self._caption(el)]
        if tag == "table-wrap":
            for table in el.iter("table"):
                rows = [" | ".join(self.inline(cell) for cell in tr if isinstance(cell.tag, str)) for tr in table.iter("tr")]
                rows = [r for r in rows if r.strip(" |")]
                if rows:
                    out.append("\n".join(rows))
                break  # alternatives may hold the same table twice
            foot = el.find("table-wrap-foot")
            if foot is not None:
                out.extend(self.inline(c) for c in foot if isinstance(c.tag, str))
        return [t for t in out if t]

    def _abstract(self, abstract: etree._Element, labelled_sections: bool) -> list[str]:
        """Paragraphs of an abstract; a structured abstract's sections read 'Background: ...'."""
        paras: list[str] = []
        for child in abstract:
            if not isinstance(child.tag, str) or child.tag in _SILENT:
                continue
            if child.tag == "sec" and labelled_sections:
                title = self.inline(child.find("title"))
                inner: list[str] = []
                self.blocks(child, inner)
                if title and inner:
                    inner[0] = f"{title.rstrip(' :')}: {inner[0]}"  # "Background:" + ":" is not "Background::"
                paras.extend(inner)
            else:
                self.blocks([child], paras)
        return paras

    def _reference(self, ref: etree._Element) -> str:
        cit = None
        for c in ref:
            if isinstance(c.tag, str) and c.tag in ("mixed-citation", "element-citation", "citation", "nlm-citation"):
                cit = c
                break
        if cit is None:
            return self.inline(ref)
        if cit.tag == "mixed-citation":
            return self.inline(cit)
        # element-citation: fields without punctuation between them; join them readably.
        names = []
        for n in cit.iter("name", "collab"):
            if n.tag == "collab":
                names.append(_local_text(n))
            else:
                names.append(" ".join(t for t in (_local_text(n.find("surname")), _local_text(n.find("given-names"))) if t))
        fields = [", ".join(n for n in names if n)]
        for t in ("article-title", "chapter-title", "source", "year", "volume"):
            fields.append(self.inline(cit.find(t)))
        fp, lp = _local_text(cit.find("fpage")), _local_text(cit.find("lpage"))
        fields.append(f"{fp}-{lp}" if fp and lp else fp)
        return ". ".join(f.rstrip(".") for f in fields if f) + "."

    # ---- one article -------------------------------------------------------------------------

    def document(self, article: etree._Element, file: str, file_order: int) -> Document:
        front = article.find("front")
        meta = front.find("article-meta") if front is not None else None
        jmeta = front.find("journal-meta") if front is not None else None

        language = language_code(article.get(XML_LANG))
        # SciELO publishes Portuguese/Spanish articles with their English translation as a
        # sub-article: the English version is the document (ids and license stay the article's).
        translation = _english_translation(article) if language != "eng" else None
        content, content_meta = article, meta
        if translation is not None:
            content, content_meta, language = translation, _sub_meta(translation), "eng"
        title = self.inline(content_meta.find("title-group/article-title")) if content_meta is not None else ""
        abstract_paras, secondary = self._abstracts(content_meta)
        paras = [title] if title else []
        paras += abstract_paras + secondary
        body = content.find("body")
        if body is not None:
            self.blocks(body, paras)
        paras += self._back(content.find("back"))
        if self.opts.include_subarticles:
            for sub in article:
                if sub.tag in ("sub-article", "response") and sub is not translation:
                    paras += self._sub_article(sub)
        text = "\n\n".join(p for p in paras if p)

        ids = self._ids(meta)
        pmcid = normalize_pmcid(ids["pmc"]) if "pmc" in ids else None
        doi = ids.get("doi")
        if pmcid:
            doc_id = f"pmcid:{pmcid}"
        elif doi:
            doc_id = f"doi:{doi}"
        else:
            doc_id = "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()
        license_ = self._license(meta)
        journal = ""
        if jmeta is not None:
            j = jmeta.find(".//journal-title")
            journal = _local_text(j)
        return Document(
            id=doc_id, text=text, source="pmc", title=title, abstract="\n\n".join(abstract_paras),
            pmid=ids.get("pmid"), pmcid=pmcid, doi=doi, version=_version(meta),
            language=language, license=license_, journal=journal,
            year=_year(meta), article_type=article.get("article-type"), file=file, file_order=file_order,
        )

    def _abstracts(self, meta: etree._Element | None) -> tuple[list[str], list[str]]:
        if meta is None:
            return [], []
        abstracts = list(meta.iterfind("abstract"))
        main = [a for a in abstracts if not a.get("abstract-type")]
        if not main:
            main = [a for a in abstracts if a.get("abstract-type") not in _MINOR_ABSTRACTS][:1] or abstracts[:1]
        main_paras: list[str] = []
        for a in main:
            main_paras += self._abstract(a, labelled_sections=True)
        secondary: list[str] = []
        for a in abstracts:
            if a in main or a.get("abstract-type") in _MINOR_ABSTRACTS:
                continue
            paras = self._abstract(a, labelled_sections=False)
            heading = self.inline(a.find("title"))
            if paras:
                secondary += ([heading] if heading else []) + paras
        return main_paras, secondary

    def _back(self, back: etree._Element | None) -> list[str]:
        if back is None:
            return []
        paras: list[str] = []
        if self.opts.include_footnotes:
            for fg in back.iter("fn-group"):
                paras.extend(t for t in (self.inline(fn) for fn in fg.iterfind("fn")) if t)
        if self.opts.include_references:
            for rl in back.iter("ref-list"):
                refs = [t for t in (self._reference(r) for r in rl.iterfind("ref")) if t]
                if refs:
                    paras.append(self.inline(rl.find("title")) or "References")
                    paras.extend(refs)
        return paras

    def _sub_article(self, sub: etree._Element) -> list[str]:
        stub = _sub_meta(sub)
        paras: list[str] = []
        if stub is not None:
            t = self.inline(stub.find("title-group/article-title"))
            if t:
                paras.append(t)
            main, secondary = self._abstracts(stub)
            paras += main + secondary
        body = sub.find("body")
        if body is not None:
            self.blocks(body, paras)
        paras += self._back(sub.find("back"))
        for nested in sub:
            if nested.tag in ("sub-article", "response"):
                paras += self._sub_article(nested)
        return paras

    @staticmethod
    def _ids(meta: etree._Element | None) -> dict[str, str]:
        ids: dict[str, str] = {}
        if meta is None:
            return ids
        for a in meta.iterfind("article-id"):
            kind = (a.get("pub-id-type") or "").lower()
            val = (a.text or "").strip()
            if not val:
                continue
            if kind in ("pmc", "pmcid"):
                kind = "pmc"
            elif kind == "doi":
                val = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", val, flags=re.I)
            if kind not in ids:
                ids[kind] = val
        return ids

    def _license(self, meta: etree._Element | None) -> str | None:
        perms = meta.find("permissions") if meta is not None else None
        if perms is None:
            return None
        urls: list[str] = []
        texts: list[str] = []
        for lic in perms.iter("license", ALI_LICENSE_REF):
            if lic.tag == ALI_LICENSE_REF:
                urls.append((lic.text or "").strip())
                continue
            for attr in (XLINK_HREF, "license-type"):
                if lic.get(attr):
                    urls.append(lic.get(attr))
            for link in lic.iter("ext-link", "uri"):
                if link.get(XLINK_HREF):
                    urls.append(link.get(XLINK_HREF))
                urls.append(_local_text(link))
            texts.append(_local_text(lic))
        if not urls and not texts:
            return None
        code = license_code(urls + texts)
        if code:
            return code
        raw = next((t for t in texts if t), "")
        return raw[:300] or None


def _sub_meta(sub: etree._Element) -> etree._Element | None:
    """A sub-article's metadata: its front-stub, or front/article-meta."""
    stub = sub.find("front-stub")
    if stub is None:
        front = sub.find("front")
        stub = front.find("article-meta") if front is not None else None
    return stub


def _english_translation(article: etree._Element) -> etree._Element | None:
    """The article's English translation (a sub-article of type "translation" with a body), if any."""
    for sub in article.iterfind("sub-article"):
        if (sub.get("article-type") == "translation" and language_code(sub.get(XML_LANG)) == "eng"
                and sub.find("body") is not None):
            return sub
    return None


def _tag(el: etree._Element) -> str:
    return el.tag if isinstance(el.tag, str) else ""


def _version(meta: etree._Element | None) -> int:
    if meta is not None:
        v = meta.findtext("article-version")
        if v and v.strip().isdigit():
            return int(v.strip())
    return 1


def _year(meta: etree._Element | None) -> int | None:
    if meta is None:
        return None
    best = None
    for d in meta.iterfind("pub-date"):
        y = (d.findtext("year") or "").strip()
        if not y[:4].isdigit():
            continue
        kind = d.get("pub-type") or d.get("date-type") or ""
        if kind in ("epub", "ppub", "pub", "epub-ppub"):
            return int(y[:4])
        best = best or int(y[:4])
    return best
