"""Polite, resumable, verified HTTP(S) downloads (stdlib only).

Used by the PubMed and PMC sources. What a download guarantees:

- **atomic**: bytes go to `<file>.part`; `os.replace` to `<file>` only after the md5 matches (the
  `.part` is kept across runs on purpose, for resuming, so it is not a `common.atomic` temp file);
- **resumable**: an existing `.part` is continued with an HTTP `Range` request; a server that
  ignores `Range` (answers 200) makes us restart the file cleanly from byte 0;
- **idempotent**: a verified file has a `<file>.verified` marker holding its md5, so a rerun skips
  it without any request (delete the marker to force a re-check);
- **retried**: connection errors, timeouts, 5xx/408/429 and truncated bodies are retried with
  exponential backoff plus jitter; other 4xx (404...) fail at once with a clear message;
- **quarantined**: a complete file whose md5 is wrong is renamed `<file>.bad-md5` and reported as a
  `ChecksumError` naming it; the other files of the batch still complete;
- **no downgrade**: a redirect from https:// to anything but https:// (or to a scheme other than
  http/https) is refused; a plain http:// base URL is accepted with a warning (`warn_if_plain_http`),
  the md5 checks being the only protection of such downloads.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from common.atomic import atomic_write_text
from data_prep.errors import InputFileError, PrepError

log = logging.getLogger(__name__)

USER_AGENT = "biogpt-healthcare-data-prep/0.1 (python-urllib; bulk download of public NCBI data)"
_CHUNK = 1 << 20
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
# Most connections NCBI sees from us at once; NLM blocks IPs that send "high rates of access".
MAX_CONNECTIONS = 8


class DownloadError(PrepError):
    """A URL could not be fetched (404, refused after all retries, ...); names the URL."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.path = url  # same attribute as InputFileError, for the manifest's `quarantined` list
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class ChecksumError(InputFileError):
    """A downloaded file's md5 differs from the published one; the file is quarantined."""


class _Retryable(Exception):
    """A transient failure (connection reset, 5xx, short body): try again after a backoff."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class HttpConfig:
    """Network behaviour shared by the downloading sources (keys of the same names in conf/source)."""

    connections: int = 3  # parallel downloads; NCBI dislikes hammering
    retries: int = 5  # extra attempts after the first, per request
    backoff_s: float = 1.0  # first retry waits about this long, then doubles (with jitter)
    backoff_max_s: float = 60.0
    timeout_s: float = 60.0  # per socket operation, not per file
    progress: bool = True
    user_agent: str = USER_AGENT

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based): exponential, full jitter in [0.5, 1.5)."""
        if retry_after is not None:
            return min(self.backoff_max_s, max(0.0, retry_after))
        base = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return base * (0.5 + random.random())


@dataclass(frozen=True)
class DownloadJob:
    url: str
    dest: Path
    md5: str | None = None  # expected hex digest; None = unknown (the marker then records ours)
    md5_url: str | None = None  # fetched lazily (only when the file is not already verified)


@dataclass(frozen=True)
class DownloadResult:
    job: DownloadJob
    path: Path | None  # the verified file, or None when it failed
    md5: str | None
    skipped: bool = False  # already verified by an earlier run: no request was made
    error: PrepError | None = None


# --------------------------------------------------------------------------- small requests


class NoDowngradeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never from https:// to a weaker scheme, and only to http(s)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old_scheme = urllib.parse.urlsplit(req.full_url).scheme.lower()
        new_scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if new_scheme not in ("http", "https") or (old_scheme == "https" and new_scheme != "https"):
            raise DownloadError(req.full_url, f"redirected (HTTP {code}) from {old_scheme}:// to {new_scheme}://; "
                                              "refused, a downgrade would expose the download to tampering")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(NoDowngradeRedirect())  # stateless: safe to share between threads


def warn_if_plain_http(url: str, key: str = "source.base_url") -> None:
    """One warning for a base URL without TLS (the md5 checks are then the only integrity check)."""
    if url.lower().startswith("http://"):
        log.warning("%s is plain http:// (%s): downloads are neither encrypted nor authenticated, only "
                    "md5-checked; use https:// where the server offers it", key, url)


def _open(url: str, cfg: HttpConfig, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """urlopen that turns transient failures into `_Retryable` and permanent ones into DownloadError."""
    req = urllib.request.Request(url, headers={"User-Agent": cfg.user_agent, **(headers or {})})
    try:
        return _OPENER.open(req, timeout=cfg.timeout_s)  # noqa: S310 (http/https only, see check)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in (408, 429) or e.code >= 500:
            retry_after = e.headers.get("Retry-After") if e.headers else None
            ra = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise _Retryable(f"HTTP {e.code} {e.reason}", ra) from None
        if e.code == 416:
            raise  # the resumable downloader handles it
        hint = " (check base_url and the selected files/ids)" if e.code in (403, 404) else ""
        raise DownloadError(url, f"HTTP {e.code} {e.reason}{hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise _Retryable(f"{type(e).__name__}: {reason}") from None


def _check_scheme(url: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise DownloadError(url, "only http(s) URLs can be downloaded")


def _with_retries(url: str, cfg: HttpConfig, fn: Callable[[int], object]):
    """Call fn(attempt) until it does not raise `_Retryable`, sleeping with backoff in between."""
    last = ""
    for attempt in range(cfg.retries + 1):
        if attempt:
            time.sleep(cfg.delay(attempt, getattr(last, "retry_after", None)))
        try:
            return fn(attempt)
        except _Retryable as e:
            last = e
            log.debug("retrying %s after: %s (attempt %d)", url, e, attempt + 1)
    raise DownloadError(url, f"failed after {cfg.retries + 1} attempts, last error: {last}; "
                             "check the network or retry later")


def _etag_md5(resp: http.client.HTTPResponse) -> str | None:
    """S3 sends the object's md5 as its ETag unless the upload was multipart (then it has a '-N')."""
    etag = (resp.headers.get("ETag") or "").strip('"').lower()
    return etag if _MD5_RE.match(etag) else None


def fetch_bytes(url: str, cfg: HttpConfig, *, verify_etag: bool = False, max_bytes: int = 1 << 30) -> bytes:
    """GET a small resource (listing, .md5, JSON) into memory, with retries and a length check."""
    _check_scheme(url)

    def attempt(_: int) -> bytes:
        with _open(url, cfg) as resp:
            expected = resp.headers.get("Content-Length")
            try:
                body = resp.read(max_bytes + 1)
            except (http.client.IncompleteRead, OSError, http.client.HTTPException) as e:
                raise _Retryable(f"truncated body ({type(e).__name__})") from None
            if len(body) > max_bytes:
                raise DownloadError(url, f"response larger than {max_bytes} bytes; is base_url right?")
            if expected is not None and expected.isdigit() and len(body) != int(expected):
                raise _Retryable(f"truncated body: {len(body)} of {expected} bytes")
            etag = _etag_md5(resp) if verify_etag else None
            if etag and hashlib.md5(body).hexdigest() != etag:
                raise _Retryable("body md5 differs from its ETag (corrupted in transit)")
            return body

    return _with_retries(url, cfg, attempt)


def parse_md5_file(text: str, filename: str) -> str:
    """Parse NCBI's `MD5(pubmed26n0001.xml.gz)= <hex>` (also plain `<hex>  name` as md5sum writes)."""
    m = re.search(r"MD5\((?P<name>[^)]*)\)\s*=\s*(?P<hex>[0-9a-fA-F]{32})", text)
    if m is None:
        m = re.match(r"\s*(?P<hex>[0-9a-fA-F]{32})\b(?:\s+\*?(?P<name>\S+))?", text)
    if m is None:
        raise InputFileError(filename + ".md5", "not an md5 file (expected 'MD5(<name>)= <32 hex digits>' "
                                                "or '<32 hex digits>  <name>'); check source.base_url")
    name = m.group("name")
    if name and Path(name).name != filename:
        raise InputFileError(filename + ".md5", f"checksum is for {name!r}, not {filename!r}")
    return m.group("hex").lower()


# --------------------------------------------------------------------------- markers


def marker_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified")


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def already_verified(dest: Path, md5: str | None = None) -> str | None:
    """The md5 of `dest` when a previous run verified it (and it matches `md5` if given), else None."""
    marker = marker_path(dest)
    if not (dest.is_file() and marker.is_file()):
        return None
    recorded = marker.read_text().strip().lower()
    if not _MD5_RE.match(recorded) or (md5 is not None and recorded != md5.lower()):
        return None
    return recorded


# --------------------------------------------------------------------------- one file


class _Progress:
    """One shared tqdm bar in bytes; the total is estimated from the files started so far."""

    def __init__(self, n_files: int, enabled: bool, desc: str):
        self._lock = threading.Lock()
        self._n_files = n_files
        self._sizes: list[int] = []
        self._bar = None
        if enabled and n_files:
            self._bar = tqdm(total=None, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                             dynamic_ncols=True, smoothing=0.05)

    def started(self, size: int | None) -> None:
        if self._bar is None or not size:
            return
        with self._lock:
            self._sizes.append(size)
            # ETA needs a total: assume the files not yet started have the mean size of those seen.
            est = int(sum(self._sizes) / len(self._sizes) * self._n_files)
            self._bar.total = max(est, self._bar.n)
            self._bar.refresh()

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _quarantine(part: Path, dest: Path) -> Path:
    bad = dest.with_name(dest.name + ".bad-md5")
    os.replace(part, bad)
    return bad


def download_file(job: DownloadJob, cfg: HttpConfig, progress: _Progress | None = None,
                  stop: threading.Event | None = None) -> DownloadResult:
    """Download one file to `job.dest`, resuming `.part`, verifying md5, writing the marker.

    Raises DownloadError (unreachable, 404, retries exhausted) or ChecksumError (quarantined).
    """
    url, dest = job.url, Path(job.dest)
    _check_scheme(url)
    md5 = job.md5.lower() if job.md5 else None
    if (done := already_verified(dest, md5)) is not None:
        return DownloadResult(job, dest, done, skipped=True)
    if md5 is None and job.md5_url is not None:
        md5 = parse_md5_file(fetch_bytes(job.md5_url, cfg, max_bytes=4096).decode("utf-8", "replace"),
                             dest.name)
        if (done := already_verified(dest, md5)) is not None:
            return DownloadResult(job, dest, done, skipped=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and md5 is not None and md5_of(dest) == md5:
        # Verified earlier but the marker was lost (e.g. killed between replace and marker write).
        atomic_write_text(marker_path(dest), md5)
        return DownloadResult(job, dest, md5, skipped=True)

    part = dest.with_name(dest.name + ".part")
    fresh_restart_done = False
    while True:
        resumed = part.is_file() and part.stat().st_size > 0
        got = _with_retries(url, cfg, lambda _a: _fetch_into(url, part, cfg, progress, stop))
        if md5 is None or got == md5:
            break
        if resumed and not fresh_restart_done:
            # The old .part may come from an earlier version of the file: retry once from byte 0.
            log.warning("%s: md5 mismatch after resuming a .part; downloading again from scratch", dest.name)
            part.unlink()
            fresh_restart_done = True
            continue
        bad = _quarantine(part, dest)
        raise ChecksumError(dest, f"md5 {got} does not match the published {md5}; quarantined as "
                                  f"{bad.name}. Delete it and rerun to download again")
    os.replace(part, dest)
    atomic_write_text(marker_path(dest), got)
    return DownloadResult(job, dest, got)


def _fetch_into(url: str, part: Path, cfg: HttpConfig, progress: _Progress | None,
                stop: threading.Event | None = None) -> str:
    """One attempt: continue `part` from its current size; return the md5 of the complete file."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = _open(url, cfg, headers)
    except urllib.error.HTTPError as e:  # 416: the .part is already complete (or longer than the file)
        total = _total_from_content_range(e.headers.get("Content-Range", "")) if e.headers else None
        if e.code == 416 and total is not None and total == offset:
            return md5_of(part)
        part.unlink(missing_ok=True)
        raise _Retryable(f"HTTP 416 for a .part of {offset} bytes; restarting from byte 0") from None
    with resp:
        if offset and resp.status == 206:
            start = _start_from_content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retryable(f"server resumed at byte {start}, not {offset}; restarting from byte 0")
            mode = "ab"
        else:
            if offset:
                log.info("%s: server ignored Range; restarting from byte 0", url)
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        if progress is not None:
            progress.started(None if expected is None else expected + offset)
        h = hashlib.md5()
        if offset:
            with open(part, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        received = 0
        with open(part, mode) as out:
            try:
                while chunk := resp.read(_CHUNK):
                    if stop is not None and stop.is_set():  # Ctrl-C in the main thread: keep the .part
                        raise DownloadError(url, "interrupted; rerun to resume from the .part file")
                    out.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress.update(len(chunk))
            except (http.client.IncompleteRead, OSError, http.client.HTTPException) as e:
                # Keep what arrived: the next attempt resumes from it with Range.
                raise _Retryable(f"connection lost after {offset + received} bytes ({type(e).__name__})") from None
        if expected is not None and received != expected:
            raise _Retryable(f"truncated body: got {received} of {expected} bytes")
        return h.hexdigest()


def _start_from_content_range(value: str) -> int | None:
    m = re.match(r"bytes\s+(\d+)-\d+/(?:\d+|\*)", value.strip())
    return int(m.group(1)) if m else None


def _total_from_content_range(value: str) -> int | None:
    m = re.match(r"bytes\s+(?:\*|\d+-\d+)/(\d+)", value.strip())
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- many files


def download_all(
    jobs: Sequence[DownloadJob], cfg: HttpConfig, *, desc: str = "download"
) -> list[DownloadResult]:
    """Download `jobs` with `cfg.connections` threads; failures are returned, never raised.

    Results come back in the order of `jobs`. Each failure is logged as one line naming the file.
    """
    results: dict[int, DownloadResult] = {}
    todo: list[int] = []
    for i, job in enumerate(jobs):
        if (done := already_verified(Path(job.dest), job.md5)) is not None:
            results[i] = DownloadResult(job, Path(job.dest), done, skipped=True)
        else:
            todo.append(i)
    if todo:
        progress = _Progress(len(todo), cfg.progress, desc)
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=max(1, cfg.connections), thread_name_prefix="dl")
        try:
            futures = {pool.submit(download_file, jobs[i], cfg, progress, stop): i for i in todo}
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except PrepError as e:
                    log.error("%s", e)
                    results[i] = DownloadResult(jobs[i], None, None, error=e)
        except BaseException:
            # KeyboardInterrupt/SystemExit: stop the workers at their next chunk instead of finishing
            # every file in flight; their .part files stay for the next run to resume.
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            progress.close()
    return [results[i] for i in range(len(jobs))]


def map_parallel(fn: Callable, items: Iterable, connections: int) -> list:
    """`[fn(x) for x in items]` with at most `connections` requests in flight (order kept)."""
    items = list(items)
    if connections <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=connections, thread_name_prefix="get") as pool:
        return list(pool.map(fn, items))


__all__ = [
    "MAX_CONNECTIONS",
    "ChecksumError",
    "DownloadError",
    "DownloadJob",
    "DownloadResult",
    "HttpConfig",
    "already_verified",
    "download_all",
    "download_file",
    "fetch_bytes",
    "map_parallel",
    "marker_path",
    "md5_of",
    "parse_md5_file",
    "warn_if_plain_http",
]
