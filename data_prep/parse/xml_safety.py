"""Open and stream XML input files safely: no entity expansion, no network, no DTD loading.

Every parser in data_prep reads its input through `iterparse_safe`, which

- reads gzip transparently, detected by its magic bytes (not by the file name);
- refuses a file whose DOCTYPE declares entities (billion laughs, XXE `SYSTEM "file:///..."`),
  before lxml sees it, and checks lxml's view of the DTD again on the first event;
- runs lxml with `resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`, so a
  plain external DOCTYPE line (as NCBI ships) parses without any fetch;
- bounds the memory one record can take (`ParseLimits`): lxml builds each record's whole tree
  before reporting it, so a 16 KB gzip of 4M empty elements inside one record would take ~500 MB.
  The decompressed bytes are counted as lxml reads them (element and attribute markers, bytes)
  since the last reported record, and a record past a limit stops the file with an InputFileError;
- reads UTF-8 (with or without BOM) and UTF-16 with a BOM, as the XML spec requires;
- turns every way a file can be unusable (empty, not XML, malformed, truncated or corrupt gzip,
  a record past the limits) into one `InputFileError(path, "<what is wrong>; <what to do>")`,
  naming the line for XML syntax errors. No reason quotes the file's content (reasons go into
  manifest.json). The pipeline quarantines the whole file on that error, so it may come
  mid-iteration.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from data_prep.errors import InputFileError

GZIP_MAGIC = b"\x1f\x8b"
# The prolog (declaration, comments, DOCTYPE) is read up to this many decompressed bytes to find
# the root element; a longer prolog is refused rather than read without limit.
MAX_PROLOG_BYTES = 1 << 20
_PEEK_CHUNK = 1 << 16

PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

_ROOT_START = re.compile(rb"<([A-Za-z_][\w.\-]*(?::[\w.\-]+)?)[\s/>]")
_REDOWNLOAD = "re-download the file (or remove it from the input list)"
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


@dataclass
class ParseLimits:
    """`cfg.parse`: how large one record (a PubmedArticle, a JATS article) may be, so that memory stays
    flat whatever the input. A record past a limit quarantines its file with a reason naming the key.

    lxml takes ~120 bytes per element and ~200 per attribute: 500,000 nodes is ~60-100 MB. The 69
    real PMC/publisher articles in ../shared/data have 2,800 (median) to 17,000 nodes and 0.5 MB at
    most; a PubMed record has a few hundred."""

    max_record_nodes: int = 500_000  # elements + attributes (+ comments, PIs) in one record
    max_record_mb: int = 64  # decompressed XML of one record, in MiB (its text included)


class _BoundedReader:
    """The decompressed stream as lxml reads it, counting what the current record can cost.

    Counts are upper bounds taken on raw bytes (C speed): every `<` that does not start an end tag
    (elements, comments, PIs) and every `=` (attributes; also an `=` in text, which only makes the
    bound stricter). `record_done()` is called at each reported record: lxml reads 32 KB ahead, so
    a record may be credited with up to one chunk of its successor.
    """

    def __init__(self, f: BinaryIO, path: str | Path, limits: ParseLimits, encoding: str = "utf-8"):
        self._f = f
        self._path = path
        self._limits = limits
        self._max_bytes = limits.max_record_mb << 20
        unit = {"utf-16-le": (b"<\x00", b"<\x00/\x00", b"=\x00"), "utf-16-be": (b"\x00<", b"\x00<\x00/", b"\x00=")}
        self._open, self._close, self._eq = unit.get(encoding, (b"<", b"</", b"="))
        self.nodes = 0
        self.nbytes = 0
        self.records = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.nbytes += len(data)
        self.nodes += data.count(self._open) - data.count(self._close) + data.count(self._eq)
        if self.nodes > self._limits.max_record_nodes:
            raise InputFileError(self._path, f"record {self.records + 1} has more than {self._limits.max_record_nodes:,} "
                                             "XML elements and attributes (a corrupt or hostile file; memory per record is "
                                             "bounded); if the record is genuine, raise parse.max_record_nodes")
        if self.nbytes > self._max_bytes:
            raise InputFileError(self._path, f"record {self.records + 1} is larger than {self._limits.max_record_mb} MiB "
                                             "of XML (memory per record is bounded); if it is genuine, raise "
                                             "parse.max_record_mb")
        return data

    def record_done(self) -> None:
        self.records += 1
        self.nodes = self.nbytes = 0

    def close(self) -> None:
        self._f.close()


def is_gzip(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_binary(path: str | Path) -> BinaryIO:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    try:
        if is_gzip(path):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except FileNotFoundError:
        raise InputFileError(path, "file not found; check the input path") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not an XML file; point the input at files") from None
    except OSError as e:
        raise InputFileError(path, f"cannot be read ({e.strerror or e}); check its permissions") from None


def read_prolog(path: str | Path) -> tuple[bytes, str]:
    """The decompressed bytes up to and including the root start tag, and the root's name.

    A UTF-16 file (with its BOM) is read as UTF-16 and its prolog returned as UTF-8. Raises
    InputFileError for an empty file, a file that is not XML, a bad gzip stream, or a DOCTYPE that
    declares entities.
    """
    head = b""
    encoding = "utf-8"
    with open_binary(path) as f:
        while True:
            try:
                chunk = f.read(_PEEK_CHUNK)
            except (EOFError, OSError, zlib.error) as e:
                raise _gzip_error(path, e) from None
            head += chunk
            encoding = _encoding(head)
            root = _find_root(_utf8_head(head, encoding))
            if root is not None or not chunk or len(head) >= MAX_PROLOG_BYTES:
                break
    head = _utf8_head(head, encoding)
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    if not text.strip():
        raise InputFileError(path, "file is empty; " + _REDOWNLOAD)
    if not text.lstrip().startswith("<"):
        # What the file looks like, never what it says: the reason goes into manifest.json.
        kind = "binary data" if "\x00" in text[:512] or "\ufffd" in text[:512] else "text"
        raise InputFileError(path, f"not XML (it starts with {kind}, not '<'); check that the right file was given")
    _check_doctype(path, text if root is None else head[: root[1]].decode("utf-8", "replace"))
    if root is None:
        if len(head) >= MAX_PROLOG_BYTES:
            raise InputFileError(path, f"no root element in the first {MAX_PROLOG_BYTES} bytes; not a usable XML file")
        raise InputFileError(path, "no root element found (truncated or not XML); " + _REDOWNLOAD)
    return head[: root[1]], root[0]


def _encoding(head: bytes) -> str:
    """'utf-16-le' / 'utf-16-be' for a UTF-16 BOM, else 'utf-8' (lxml reads the declaration itself)."""
    return _UTF16_BOMS.get(head[:2], "utf-8")


def _utf8_head(head: bytes, encoding: str) -> bytes:
    if encoding == "utf-8":
        return head
    usable = head[2: len(head) - (len(head) % 2)]  # BOM off; a code unit cut by the chunk end waits
    return usable.decode(encoding, "replace").encode("utf-8")


def root_name(path: str | Path) -> str:
    """The root element's local name (prefix dropped), read from the prolog only."""
    return read_prolog(path)[1].rsplit(":", 1)[-1]


def iterparse_safe(
    path: str | Path,
    tag: str | tuple[str, ...] | None = None,
    events: tuple[str, ...] = ("end",),
    prolog_checked: bool = False,
    limits: ParseLimits | None = None,
) -> Iterator[tuple[str, etree._Element]]:
    """`lxml.etree.iterparse` with secure options; every input problem becomes InputFileError.

    `prolog_checked=True` skips the prolog check when the caller already ran `read_prolog`
    (or `root_name`) on this path, saving a second open of small files. `limits` bounds what lxml
    may build between two reported events (`tag` should name the record elements, which the
    caller frees once read); default `ParseLimits()`.
    """
    if not prolog_checked:
        read_prolog(path)  # refuses hostile DOCTYPEs, empty and non-XML files before lxml reads them
    f = open_binary(path)
    try:
        encoding = _encoding(f.peek(2)[:2]) if hasattr(f, "peek") else "utf-8"
    except (EOFError, OSError, zlib.error) as e:
        f.close()
        raise _gzip_error(path, e) from None
    reader = _BoundedReader(f, path, limits or ParseLimits(), encoding)
    try:
        it = etree.iterparse(reader, events=events, tag=tag, **PARSER_OPTIONS)
        checked = False
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except etree.XMLSyntaxError as e:
                raise _syntax_error(path, e, it) from None
            except (EOFError, zlib.error, gzip.BadGzipFile) as e:
                raise _gzip_error(path, e) from None
            reader.record_done()
            if not checked:
                # Belt and braces: lxml's own view of the DOCTYPE must not declare entities either.
                _check_dtd_entities(path, item[1])
                checked = True
            yield item
    finally:
        reader.close()


def _find_root(head: bytes) -> tuple[str, int] | None:
    """(root name, end offset of `<name`) of the first element start tag outside the prolog."""
    pos = 0
    n = len(head)
    while pos < n:
        lt = head.find(b"<", pos)
        if lt < 0 or lt + 1 >= n:
            return None
        nxt = head[lt + 1 : lt + 2]
        if nxt == b"?":  # XML declaration or processing instruction
            end = head.find(b"?>", lt)
            pos = end + 2 if end >= 0 else n
        elif head.startswith(b"<!--", lt):
            end = head.find(b"-->", lt)
            pos = end + 3 if end >= 0 else n
        elif nxt == b"!":  # DOCTYPE, possibly with an [internal subset]
            pos = _declaration_end(head, lt)
        else:
            m = _ROOT_START.match(head, lt)
            if m is None:
                return None
            return m.group(1).decode("ascii", "replace"), m.end()
    return None


def _declaration_end(head: bytes, start: int) -> int:
    """Offset just past the `<!DOCTYPE ...>` starting at `start` (len(head) if it does not end).

    Quoted strings, comments and PIs are skipped whole, so a `]>` inside them (`<!-- ]> -->`) does
    not end the internal subset early and hide the declarations after it."""
    n = len(head)
    i = start + 2
    in_subset = False
    while i < n:
        c = head[i : i + 1]
        if c in (b'"', b"'"):
            end = head.find(c, i + 1)
            i = end + 1 if end >= 0 else n
        elif head.startswith(b"<!--", i):
            end = head.find(b"-->", i + 4)
            i = end + 3 if end >= 0 else n
        elif head.startswith(b"<?", i):
            end = head.find(b"?>", i + 2)
            i = end + 2 if end >= 0 else n
        else:
            if c == b"[":
                in_subset = True
            elif c == b"]":
                in_subset = False
            elif c == b">" and not in_subset:
                return i + 1
            i += 1
    return n


def _check_doctype(path: str | Path, prolog: str) -> None:
    start = prolog.find("<!DOCTYPE")
    if start < 0:
        return
    if "<!ENTITY" in prolog[start:]:
        raise InputFileError(
            path,
            "DOCTYPE declares entities (entity expansion / external entity attack, or a DTD "
            "pasted into the file); refused without expanding them — use the file as NCBI/the publisher ships it",
        )


def _check_dtd_entities(path: str | Path, elem: etree._Element) -> None:
    dtd = elem.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise InputFileError(path, "DOCTYPE declares entities; refused without expanding them")


def _syntax_error(path: str | Path, e: etree.XMLSyntaxError, it: object) -> InputFileError:
    line = getattr(e, "lineno", 0) or 0
    msg = str(e.msg if getattr(e, "msg", None) else e)
    if line <= 0:
        # iterparse sometimes reports a generic 'no element found' at line 0; its log has the cause.
        log = getattr(it, "error_log", None)
        last = log.last_error if log is not None else None
        if last is not None and last.line > 0:
            line, msg = last.line, last.message
    where = f"line {line}" if line > 0 else "end of file"
    # libxml2's first line names the problem; later lines may quote the file's bytes ("Bytes: 0x..").
    msg = (msg.strip().splitlines() or [""])[0].strip()[:200]
    return InputFileError(path, f"malformed XML at {where}: {msg}; {_REDOWNLOAD}")


def _gzip_error(path: str | Path, e: BaseException) -> InputFileError:
    return InputFileError(path, f"truncated or corrupt gzip stream ({e}); {_REDOWNLOAD}")
