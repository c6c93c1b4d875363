"""Anonymous read access to a public S3 bucket over plain HTTPS (no boto3, no credentials)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlencode, urlparse

from lxml import etree

from data_prep.sources.download import DownloadError, HttpConfig, fetch_bytes

_MAX_PAGES = 10_000  # a guard against a server that keeps returning the same token


@dataclass
class Listing:
    keys: list[str] = field(default_factory=list)  # objects directly under the prefix
    prefixes: list[str] = field(default_factory=list)  # CommonPrefixes ("folders")


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def parse_list_objects(xml: bytes, url: str) -> tuple[Listing, str | None]:
    """One ListObjectsV2 page -> (keys and common prefixes, NextContinuationToken or None)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as e:
        raise DownloadError(url, f"not a ListObjectsV2 XML answer ({e}); check source.base_url") from None
    if _local(root.tag) != "ListBucketResult":
        raise DownloadError(url, f"expected <ListBucketResult>, got <{_local(root.tag)}>; check source.base_url")
    page = Listing()
    token = None
    truncated = False
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            key = next((c.text for c in child if _local(c.tag) == "Key"), None)
            if key:
                page.keys.append(key)
        elif tag == "CommonPrefixes":
            prefix = next((c.text for c in child if _local(c.tag) == "Prefix"), None)
            if prefix:
                page.prefixes.append(prefix)
        elif tag == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif tag == "NextContinuationToken":
            token = (child.text or "").strip() or None
    if truncated and token is None:
        raise DownloadError(url, "listing is truncated but has no NextContinuationToken")
    return page, token if truncated else None


def list_objects(base_url: str, prefix: str, cfg: HttpConfig, *, delimiter: str | None = "/") -> Listing:
    """All keys and common prefixes under `prefix` (ListObjectsV2, following continuation tokens)."""
    out = Listing()
    token: str | None = None
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        params = {"list-type": "2", "prefix": prefix}
        if delimiter:
            params["delimiter"] = delimiter
        if token:
            params["continuation-token"] = token
        url = base_url + "?" + urlencode(params, quote_via=quote)
        page, token = parse_list_objects(fetch_bytes(url, cfg, max_bytes=64 << 20), url)
        out.keys.extend(page.keys)
        out.prefixes.extend(page.prefixes)
        if token is None:
            return out
        if token in seen:
            raise DownloadError(url, "listing repeats a continuation token; stopping")
        seen.add(token)
    raise DownloadError(base_url, f"listing of {prefix!r} has more than {_MAX_PAGES} pages")


def object_url(base_url: str, key: str) -> str:
    return base_url + quote(key, safe="/._-~")


def split_s3_url(url: str, bucket: str) -> tuple[str, str | None]:
    """`s3://{bucket}/{key}?md5={hex}` -> (key, md5 or None); rejects other buckets and odd keys."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or parsed.netloc != bucket:
        raise ValueError(f"not an s3://{bucket}/ URL: {url!r}")
    key = parsed.path.lstrip("/")
    if not key or ".." in key.split("/"):
        raise ValueError(f"bad object key in {url!r}")
    md5 = parse_qs(parsed.query).get("md5", [None])[0]
    if md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
        raise ValueError(f"bad md5 in {url!r}")
    return key, md5.lower() if md5 else None
