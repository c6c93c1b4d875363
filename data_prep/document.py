"""The records that flow between data-prep stages.

Parsers yield `Document`s (and, for PubMed update files, `Deletion`s); every later stage
(clean, filter, dedup, decontaminate, tokenize) reads and writes `Document`s only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(slots=True)
class Document:
    id: str  # "pmid:<n>" | "pmcid:PMC<n>" | "doi:<doi>" | "sha1:<hex>" (stable, from content)
    text: str  # what is tokenized: title, then abstract / body paragraphs, separated by "\n\n"
    source: str  # "pubmed" | "pmc"
    title: str = ""
    abstract: str = ""
    pmid: str | None = None
    pmcid: str | None = None  # "PMC<n>"
    doi: str | None = None
    version: int = 1  # PubMed PMID Version / PMC article version
    language: str = ""  # ISO 639-2/B as PubMed writes it ("eng", "fre", ...); "" when unknown
    license: str | None = None  # "CC BY", "CC0", ... for PMC; None for PubMed abstracts
    publication_types: tuple[str, ...] = ()
    mesh: tuple[str, ...] = ()
    journal: str = ""
    year: int | None = None
    article_type: str | None = None  # JATS article-type ("research-article", "retraction", ...)
    file: str = ""  # the input file it came from (for the manifest and error messages)
    file_order: int = 0  # position of that file in load order (later files win)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True, frozen=True)
class Deletion:
    """A PubMed `<DeleteCitation>` entry: this PMID must not be in the corpus."""

    pmid: str
    file: str = ""
    file_order: int = 0
