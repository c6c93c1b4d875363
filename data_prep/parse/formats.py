"""Which parser reads a file, decided from its root element (only the prolog is read)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from data_prep.parse.xml_safety import root_name

Format = Literal["pubmed", "jats", "unknown"]

PUBMED_ROOTS = frozenset({"PubmedArticleSet", "MedlineCitationSet", "PubmedArticle", "PubmedBookArticle", "MedlineCitation"})
# pmc-articleset: PMC EFetch; OAI-PMH: PMC's OAI service wrapping JATS in <record><metadata>.
JATS_ROOTS = frozenset({"article", "pmc-articleset", "OAI-PMH"})


def detect_format(path: str | Path) -> Format:
    """"pubmed" | "jats" | "unknown" from the root element's name.

    Reads only the prolog (gunzipped when the file starts with the gzip magic). An unreadable,
    empty, non-XML or hostile file raises `InputFileError` (the same one the parsers would
    raise), so the caller can quarantine it before choosing a parser.
    """
    root = root_name(path)
    if root in PUBMED_ROOTS:
        return "pubmed"
    if root in JATS_ROOTS:
        return "jats"
    return "unknown"
