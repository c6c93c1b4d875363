"""Open and stream XML input files safely: no entity expansion, no network, no DTD loading.

Every parser in data_prep reads its input through `iterparse_safe`, which

- reads gzip transparently, detected by its magic bytes (not by the file name);
- refuses a file whose DOCTYPE declares entities (billion laughs, XXE `SYSTEM "file:///..."`),
  before lxml sees it, and checks lxml's view of the DTD again on the first event;
- runs lxml with `resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`, so a
  plain external DOCTYPE line (as NCBI ships) parses without any fetch;
- turns every way a file can be unusable (empty, not XML, malformed, truncated or corrupt gzip)
  into one `InputFileError(path, "<what is wrong>; <what to do>")`, naming the line for XML
  syntax errors. The pipeline quarantines the whole file on that error, so it may come
  mid-iteration.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
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

    Raises InputFileError for an empty file, a file that is not XML, a bad gzip stream, or a
    DOCTYPE that declares entities.
    """
    head = b""
    with open_binary(path) as f:
        while True:
            try:
                chunk = f.read(_PEEK_CHUNK)
            except (EOFError, OSError, zlib.error) as e:
                raise _gzip_error(path, e) from None
            head += chunk
            root = _find_root(head)
            if root is not None or not chunk or len(head) >= MAX_PROLOG_BYTES:
                break
    text = _decode_head(head).lstrip("\ufeff")
    if not text.strip():
        raise InputFileError(path, "file is empty; " + _REDOWNLOAD)
    if not text.lstrip().startswith("<"):
        snippet = text.lstrip()[:20].encode("unicode_escape").decode("ascii")
        raise InputFileError(path, f"not XML (starts with '{snippet}'); check that the right file was given")
    _check_doctype(path, text if root is None else _decode_head(head[: root[1]]))
    if root is None:
        if len(head) >= MAX_PROLOG_BYTES:
            raise InputFileError(path, f"no root element in the first {MAX_PROLOG_BYTES} bytes; not a usable XML file")
        raise InputFileError(path, "no root element found (truncated or not XML); " + _REDOWNLOAD)
    return head[: root[1]], root[0]


def root_name(path: str | Path) -> str:
    """The root element's local name (prefix dropped), read from the prolog only."""
    return read_prolog(path)[1].rsplit(":", 1)[-1]


def iterparse_safe(
    path: str | Path,
    tag: str | tuple[str, ...] | None = None,
    events: tuple[str, ...] = ("end",),
    prolog_checked: bool = False,
) -> Iterator[tuple[str, etree._Element]]:
    """`lxml.etree.iterparse` with secure options; every input problem becomes InputFileError.

    `prolog_checked=True` skips the prolog check when the caller already ran `read_prolog`
    (or `root_name`) on this path, saving a second open of small files.
    """
    if not prolog_checked:
        read_prolog(path)  # refuses hostile DOCTYPEs, empty and non-XML files before lxml reads them
    f = open_binary(path)
    try:
        it = etree.iterparse(f, events=events, tag=tag, **PARSER_OPTIONS)
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
            if not checked:
                # Belt and braces: lxml's own view of the DOCTYPE must not declare entities either.
                _check_dtd_entities(path, item[1])
                checked = True
            yield item
    finally:
        f.close()


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
            bracket = head.find(b"[", lt)
            gt = head.find(b">", lt)
            if bracket >= 0 and (gt < 0 or bracket < gt):
                end = head.find(b"]", bracket)
                gt = head.find(b">", end) if end >= 0 else -1
            pos = gt + 1 if gt >= 0 else n
        else:
            m = _ROOT_START.match(head, lt)
            if m is None:
                return None
            return m.group(1).decode("ascii", "replace"), m.end()
    return None


def _decode_head(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", "replace")
    return head.decode("utf-8", "replace")


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
    return InputFileError(path, f"malformed XML at {where}: {msg.strip()}; {_REDOWNLOAD}")


def _gzip_error(path: str | Path, e: BaseException) -> InputFileError:
    return InputFileError(path, f"truncated or corrupt gzip stream ({e}); {_REDOWNLOAD}")
