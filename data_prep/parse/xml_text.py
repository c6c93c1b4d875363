"""Element -> plain text, shared by the PubMed and JATS parsers.

Inline markup (`<i>`, `<sup>`, `<italic>`, ...) is flattened to its text; MathML becomes readable
linear text (`x^2`, `x_2`, `a/b`); entity references that lxml leaves unexpanded (a JATS file
using `&nbsp;` from a DTD we do not load) become their character when HTML knows the name and
are dropped otherwise. Whitespace is collapsed to single spaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.entities import name2codepoint

from lxml import etree

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
MATH_TAGS = frozenset({f"{{{MATHML_NS}}}math", "math"})

# A handler renders one element (not its tail) by appending strings to `out`.
Handler = Callable[[etree._Element, list], None]


def normalize_ws(s: str) -> str:
    return " ".join(s.split())


def entity_text(node: etree._Entity) -> str:
    """The character for an unexpanded entity reference (`&nbsp;` -> U+00A0), or ''."""
    cp = name2codepoint.get(node.name)
    return chr(cp) if cp is not None else ""


def collect(el: etree._Element, out: list, handlers: dict[str, Handler]) -> None:
    """Append the text of `el`'s content (not its tail) to `out`, children via `handlers`."""
    if el.text:
        out.append(el.text)
    for child in el:
        tag = child.tag
        if isinstance(tag, str):
            h = handlers.get(tag)
            if h is None:
                collect(child, out, handlers)
            else:
                h(child, out)
        elif tag is etree.Entity:
            out.append(entity_text(child))
        # comments and processing instructions contribute nothing but their tail
        if child.tail:
            out.append(child.tail)


def _math_handler(el: etree._Element, out: list) -> None:
    out.append(math_text(el))


DEFAULT_HANDLERS: dict[str, Handler] = {t: _math_handler for t in MATH_TAGS}


# Some records carry HTML escaped as text ("&lt;PRE&gt;3&lt;/PRE&gt;"); the tags are not prose.
_ESCAPED_TAG = re.compile(r"</?(?:i|b|u|em|strong|sup|sub|pre|br|p|span|small|sc)\s*/?>", re.I)


def strip_escaped_tags(s: str) -> str:
    return _ESCAPED_TAG.sub("", s) if "<" in s else s


def element_text(el: etree._Element | None, handlers: dict[str, Handler] = DEFAULT_HANDLERS) -> str:
    """Whitespace-normalised text of `el` with inline markup flattened and MathML rendered."""
    if el is None:
        return ""
    if not len(el):  # fast path: no markup inside (most PubMed titles and abstracts)
        t = el.text
        if not t:
            return ""
    else:
        out: list[str] = []
        collect(el, out, handlers)
        t = "".join(out)
    return " ".join(strip_escaped_tags(t).split())


# ---- MathML -> linear text ------------------------------------------------------------------

_RELATIONS = frozenset("=<>≤≥≈≠≡∼~→←↔⇒⇔∈∉⊂⊆±×")
_ACCENTS = {  # mover accents -> combining characters, so V with a dot over it reads "V̇"
    "˙": "\u0307", ".": "\u0307", "·": "\u0307", "•": "\u0307",
    "¯": "\u0304", "‾": "\u0304", "_": "\u0304", "―": "\u0304", "-": "\u0304", "—": "\u0304",
    "^": "\u0302", "ˆ": "\u0302", "~": "\u0303", "˜": "\u0303", "→": "\u20d7", "⃗": "\u20d7",
    "¨": "\u0308",
}
_SILENT = frozenset({"annotation", "annotation-xml", "mphantom", "none", "mprescripts", "malignmark", "maligngroup"})


def math_text(math: etree._Element) -> str:
    """Readable text for an `mml:math` element: its alttext when usable, else rendered MathML."""
    alt = math.get("alttext")
    if alt and _sensible_alttext(alt):
        return normalize_ws(alt)
    return normalize_ws(_mml(math))


def _sensible_alttext(alt: str) -> bool:
    # Some publishers put whole LaTeX documents or image file names in alttext.
    a = alt.strip()
    return 0 < len(a) <= 200 and "\\begin" not in a and "\\documentclass" not in a and not a.lower().endswith(
        (".gif", ".png", ".jpg", ".tif")
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _token(el: etree._Element) -> str:
    parts = [el.text or ""]
    for c in el:
        if c.tag is etree.Entity:
            parts.append(entity_text(c))
        elif isinstance(c.tag, str):
            parts.append(_mml(c))  # e.g. mglyph / malignmark inside a token
        if c.tail:
            parts.append(c.tail)
    return normalize_ws("".join(parts))


def _group(el: etree._Element | None) -> str:
    """A script/fraction operand, parenthesised when it is more than one symbol."""
    if el is None:
        return ""
    s = normalize_ws(_mml(el))
    if len(s) > 1 and not (s.isdigit() or s.isalpha()) and not (s[0] == "(" and s[-1] == ")"):
        return f"({s})"
    return s


def _mml(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return entity_text(el) if tag is etree.Entity else ""
    name = _local(tag)
    if name in ("mi", "mn", "mtext", "ms"):
        return _token(el)
    if name == "mo":
        t = _token(el)
        if t in _RELATIONS:
            return f" {t} "
        if t in (",", ";"):
            return t + " "
        return t
    if name in _SILENT:
        return ""
    if name == "mspace":
        return " "
    kids = _children(el)
    if name == "semantics":
        return _mml(kids[0]) if kids else ""
    if name in ("msup", "msub", "munder", "mover", "mfrac", "mroot") and len(kids) < 2:
        return "".join(_mml(k) for k in kids)
    if name == "msup":
        return f"{_mml(kids[0])}^{_group(kids[1])}"
    if name == "msub":
        return f"{_mml(kids[0])}_{_group(kids[1])}"
    if name == "msubsup":
        if len(kids) < 3:
            return "".join(_mml(k) for k in kids)
        return f"{_mml(kids[0])}_{_group(kids[1])}^{_group(kids[2])}"
    if name == "mover":
        base, over = normalize_ws(_mml(kids[0])), normalize_ws(_mml(kids[1]))
        accent = _ACCENTS.get(over)
        if accent is not None and base:
            return base + accent
        return f"{base}^{_group(kids[1])}"
    if name == "munder":
        return f"{_mml(kids[0])}_{_group(kids[1])}"
    if name == "munderover":
        if len(kids) < 3:
            return "".join(_mml(k) for k in kids)
        return f"{_mml(kids[0])}_{_group(kids[1])}^{_group(kids[2])}"
    if name == "mfrac":
        return f"{_group(kids[0])}/{_group(kids[1])}"
    if name == "msqrt":
        inner = normalize_ws("".join(_mml(k) for k in kids))
        return f"√{inner}" if len(inner) <= 1 or inner.isalnum() else f"√({inner})"
    if name == "mroot":
        return f"{_group(kids[0])}^(1/{normalize_ws(_mml(kids[1]))})"
    if name == "mfenced":
        open_, close = el.get("open", "("), el.get("close", ")")
        seps = el.get("separators")
        if seps is None and any(_local(k.tag) == "mo" for k in kids):
            # Editors often use mfenced as a plain fence around an expression; no default commas then.
            return open_ + normalize_ws("".join(_mml(k) for k in kids)) + close
        sep = ((seps if seps is not None else ",").strip() or " ")[0]
        return open_ + f"{sep} ".join(normalize_ws(_mml(k)) for k in kids) + close
    if name == "mtable":  # matrices and aligned equations: cells by spaces, rows by "; "
        return "; ".join(r for r in (normalize_ws(_mml(k)) for k in kids) if r)
    if name in ("mtr", "mlabeledtr"):
        cells = kids[1:] if name == "mlabeledtr" else kids  # the first cell of mlabeledtr is its label
        return " ".join(normalize_ws(_mml(k)) for k in cells)
    # math, mrow, mstyle, mpadded, menclose, merror, mtd, mmultiscripts, ...: concatenate
    return "".join(_mml(k) for k in kids) if kids else _token(el)
