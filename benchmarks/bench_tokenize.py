"""Tokenize-and-write throughput of the pipeline's shard stage vs raw `Tokenizer.encode_batch`,
and the projected wall time of the whole 2026 PubMed baseline on a 16-core node.

    .venv/bin/python benchmarks/bench_tokenize.py [--mb 6] [--vocab 42384]

The text is the cleaned, filter-passing documents parsed from every real file in
../shared/data/pubmed and ../shared/data/pmc, repeated (with distinct ids) to about `--mb` MB.
Both sides tokenize the same texts in the same run with the same trained tokenizer:

  raw       Tokenizer.encode_batch on batches of 1,024 texts already in memory (ids left as lists)
  pipeline  data_prep.stages_tokenize.tokenize_to_shards: read documents/*.parquet, encode_batch,
            convert to uint16, write train/val .bin + .idx shards with checksums

The projection measures, in this run, the per-core rate of the map stage (parse + clean + filter
+ Parquet) on a baseline-format file built by repeating the real PubMed records, the merge rate,
the tokenizer-training rate and the tokenize rate, then scales them to 1,334 files / ~41M
citations on 16 cores; the arithmetic is printed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_prep.clean import CleanConfig, clean_document  # noqa: E402
from data_prep.document import Document  # noqa: E402
from data_prep.filters import FilterConfig, apply_filters, build_filters  # noqa: E402
from data_prep.formats import detect_format  # noqa: E402
from data_prep.parse_pubmed import iter_pubmed  # noqa: E402
from data_prep.shards import split_of  # noqa: E402
from data_prep.stages_reduce import DocumentsWriter  # noqa: E402
from data_prep.stages_tokenize import tokenize_to_shards  # noqa: E402
from data_prep.tokenizer import train_bpe  # noqa: E402

SHARED = Path(os.environ.get("BIOGPT_SHARED", ROOT.parent / "shared")) / "data"

# The 2026 baseline as NCBI lists it (the figures).
BASELINE_FILES = 1_334
BASELINE_CITATIONS = 41_000_000
BASELINE_GZ_BYTES = 51.8e9
NODE_CORES = 16


def real_documents() -> list[Document]:
    docs: list[Document] = []
    ccfg, filters = CleanConfig(), build_filters(FilterConfig())
    files = sorted(p for sub in ("pubmed", "pmc") for p in (SHARED / sub).rglob("*") if ".xml" in p.name)
    for p in files:
        try:
            fmt = detect_format(p)
            if fmt == "pubmed":
                it = iter_pubmed(p)
            elif fmt == "jats":
                from data_prep.parse_jats import iter_jats

                it = iter_jats(p)
            else:
                continue
            for rec in it:
                if isinstance(rec, Document):
                    d = clean_document(rec, ccfg)
                    if apply_filters(d, filters) is None:
                        docs.append(d)
        except Exception as e:  # a bench input problem must not hide the measurement
            print(f"  skipped {p.name}: {e}", file=sys.stderr)
    return docs


def build_corpus(docs: list[Document], target_bytes: int, out: Path) -> tuple[list[dict], list[str]]:
    """documents/*.parquet with the real docs repeated under distinct ids until target_bytes."""
    w = DocumentsWriter(out / "documents", 20_000, 10_000, "zstd")
    texts, total, rep = [], 0, 0
    while total < target_bytes:
        for d in docs:
            d2 = Document(id=f"{d.id}#{rep}", text=d.text, source=d.source, license=d.license)
            w.add(d2, split_of(d2.id, 0.005))
            texts.append(d.text)
            total += len(d.text.encode())
            if total >= target_bytes:
                break
        rep += 1
    return w.close(), texts


def best_of(n: int, fn) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def map_rate(tmp: Path, min_records: int = 6000) -> tuple[float, float, float]:
    """(map records/s, gz bytes per record, merge records/s), one core, on a baseline-format .xml.gz.

    merge = version resolution + survivors streamed + documents Parquet written (dedup and
    decontamination add a hash lookup per document).
    """
    from data_prep.stages_map import MapContext, file_key, map_file
    from data_prep.stages_reduce import iter_survivors, resolve_versions

    src = SHARED / "pubmed" / "pubmedsample_2019.split-a.xml.gz"
    raw = gzip.decompress(src.read_bytes()).decode("utf-8")
    head, rest = raw.split("<PubmedArticle>", 1)
    body, tail = ("<PubmedArticle>" + rest).rsplit("</PubmedArticle>", 1)
    body += "</PubmedArticle>"
    n1 = body.count("<PubmedArticle>")
    reps = max(1, min_records // n1)
    big = tmp / "pubmed26n0001.xml.gz"
    with gzip.open(big, "wt", encoding="utf-8") as f:
        f.write(head + body * reps + tail)
    ctx = MapContext(map_dir=tmp / "map", rejects_dir=None, clean_cfg=CleanConfig(), filter_cfg=FilterConfig(),
                     jats_options=None)
    ctx.map_dir.mkdir()

    def once():
        shutil.rmtree(ctx.map_dir)
        ctx.map_dir.mkdir()
        map_file(ctx, big, 1, {})

    secs = best_of(2, once)
    n = n1 * reps
    out = ctx.map_dir / f"{file_key(1, big)}.parquet"

    def merge():
        shutil.rmtree(tmp / "merged", ignore_errors=True)
        res = resolve_versions([(1, out)])
        w = DocumentsWriter(tmp / "merged", 200_000, 10_000, "zstd")
        for d in iter_survivors([(1, out)], res):
            w.add(d, split_of(d.id, 0.005))
        w.close()

    merge_s = best_of(2, merge)
    return n / secs, big.stat().st_size / n, n / merge_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=6.0)
    ap.add_argument("--vocab", type=int, default=42_384)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cores = os.cpu_count()
    print(f"machine: {cores} cores; load average {os.getloadavg()[0]:.1f} (other jobs share it: compare ratios)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_tokenize_"))
    try:
        t = time.perf_counter()
        docs = real_documents()
        print(f"real documents: {len(docs)} ({sum(len(d.text) for d in docs) / 1e6:.2f} M chars) "
              f"in {time.perf_counter() - t:.1f}s")
        parts, texts = build_corpus(docs, int(args.mb * 1e6), tmp)
        n_bytes = sum(len(x.encode()) for x in texts)
        t = time.perf_counter()
        tok = train_bpe(texts, args.vocab)
        train_s = time.perf_counter() - t
        train_bytes = n_bytes
        print(f"tokenizer: vocab {tok.get_vocab_size()} trained on {train_bytes / 1e6:.2f} MB in {train_s:.1f}s")

        n_tokens = 0

        def raw():
            nonlocal n_tokens
            n_tokens = 0
            for i in range(0, len(texts), 1024):
                for e in tok.encode_batch(texts[i:i + 1024], add_special_tokens=False):
                    n_tokens += len(e.ids)

        shard_tokens = 0

        def pipe(procs: int):
            nonlocal shard_tokens
            shutil.rmtree(tmp / "shards", ignore_errors=True)
            out = tokenize_to_shards(tmp, parts, tok, max_tokens=1 << 22, batch_docs=1024, processes=procs)
            shard_tokens = sum(s.tokens - s.documents for lst in out.values() for s in lst)  # minus EOS

        # Interleaved rounds, best of each: the machine is shared, so load drifts during the run.
        best = {"raw": float("inf"), 0: float("inf"), 2: float("inf")}
        for _ in range(args.repeats):
            best["raw"] = min(best["raw"], best_of(1, raw))
            for procs in (0, 2):
                best[procs] = min(best[procs], best_of(1, lambda p=procs: pipe(p)))
                assert shard_tokens == n_tokens, (shard_tokens, n_tokens)
        raw_rate = n_tokens / best["raw"]
        print(f"text: {len(texts)} docs, {n_bytes / 1e6:.1f} MB, {n_tokens:,} tokens")
        print(f"raw encode_batch:          {raw_rate / 1e6:.3f} M tokens/s")
        results = {}
        for procs in (0, 2):
            results[procs] = n_tokens / best[procs]
            label = "in-process (Rust threads)" if procs == 0 else f"{procs} processes"
            print(f"pipeline, {label}: {results[procs] / 1e6:.3f} M tokens/s  "
                  f"ratio vs raw: {results[procs] / raw_rate:.2f}x (goal >= 0.8x)")

        # ---- projection for the 2026 baseline on a 16-core node ----
        rec_s, gz_per_rec, merge_rate = map_rate(tmp)
        # The baseline is abstracts: size it with the PubMed documents only (the JATS full texts
        # in the bench text are ~10x longer).
        abstracts = [d.text for d in docs if d.source == "pubmed"]
        tokens_per_doc = sum(len(e.ids) for e in tok.encode_batch(abstracts)) / len(abstracts)
        bytes_per_doc = sum(len(t.encode()) for t in abstracts) / len(abstracts)
        kept_fraction = 29 / 41  # citations with an abstract (the figures); filters drop a little more
        kept = BASELINE_CITATIONS * kept_fraction
        total_tokens = kept * tokens_per_doc
        t_map = BASELINE_CITATIONS / (rec_s * NODE_CORES)
        t_merge = BASELINE_CITATIONS / merge_rate
        sample_bytes = 2_000_000 * bytes_per_doc  # tokenizer.max_train_docs = 2M documents
        t_train = sample_bytes / (train_bytes / train_s)  # merges are sequential: no credit for more cores
        tok_rate_node = results[0] * NODE_CORES / (cores or 2)
        t_tok = total_tokens / tok_rate_node
        total = t_map + t_merge + t_train + t_tok
        print("\nprojection: 2026 PubMed baseline (1,334 files, ~41M citations, 51.8 GB gz), 16 cores")
        print(f"  map   : {BASELINE_CITATIONS:,} records / ({rec_s:,.0f} rec/s/core x {NODE_CORES}) = {t_map / 60:6.1f} min"
              f"   [gz bytes/record here {gz_per_rec:,.0f}; baseline {BASELINE_GZ_BYTES / BASELINE_CITATIONS:,.0f}]")
        print(f"  merge : {BASELINE_CITATIONS:,} records / {merge_rate:,.0f} rec/s (1 process)   = {t_merge / 60:6.1f} min")
        print(f"  bpe   : {sample_bytes / 1e9:.2f} GB sample / {train_bytes / train_s / 1e6:.2f} MB/s "
              f"= {t_train / 60:6.1f} min")
        print(f"  shards: {kept:,.0f} docs x {tokens_per_doc:.0f} tok = {total_tokens / 1e9:.2f} B tokens / "
              f"({results[0] / 1e6:.2f} M tok/s x {NODE_CORES}/{cores}) = {t_tok / 60:6.1f} min")
        print(f"  total : {total / 3600:.2f} h (download not included)")
        unloaded = 0.8e6  # the raw encode_batch figure for an idle 2-core machine
        t_tok_idle = total_tokens / (unloaded * results[0] / raw_rate * NODE_CORES / (cores or 2))
        print(f"  (with raw encode_batch at 0.8 M tok/s on 2 idle cores and this run's ratio, shards take "
              f"{t_tok_idle / 60:.1f} min and the total is {(total - t_tok + t_tok_idle) / 3600:.2f} h)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
