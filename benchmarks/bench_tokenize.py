"""Tokenize-and-write throughput of the pipeline's shard stage, against raw `Tokenizer.encode_batch`
(the same library: what the stage adds) and against tiktoken (an independent BPE implementation
loaded with the same vocabulary and merges, so it produces the same ids: how fast the encoder
library itself is).

    .venv/bin/python benchmarks/bench_tokenize.py [--mb 8] [--repeats 5]

Text: the first `--mb` MB of real PubMed/PMC abstracts from ../shared/data/corpus/corpus.jsonl.gz
(24,419 distinct documents, 34 MB). Tokenizer: a byte-level BPE of exactly `--vocab` (42,384)
entries trained by data_prep's own trainer on the first 8 MB of that corpus, whatever `--mb` is.
Cases, interleaved round by round (benchmarks/_stats.py), wall time:

  raw        Tokenizer.encode_batch on batches of 1,024 texts already in memory (ids left as lists)
  pipeline   data_prep's tokenize_to_shards (shards.processes=0, the default): read documents/*.parquet,
             encode_batch, uint16, write train/val .bin + .idx with checksums
  pipeline2  the same with shards.processes=2 (each worker reads and encodes whole row groups)
  pipeline_tiktoken  tokenize_to_shards with shards.encoder=tiktoken (data_prep/tokens/fast_encode.py:
             routing, NFC and prefix space in Python, tiktoken threads on every core), same bytes;
             it includes a fixed ~0.5 s a run (the Encoding from the vocabulary, and the safety net
             encoding the first 1,024 documents with both libraries): most of a --mb 2 run
  pipeline_tiktoken2  the same with shards.processes=2 (what `workers=2` runs by default)
  tiktoken   tiktoken.Encoding.encode_ordinary_batch (one thread per core) on texts already prepared

`pipeline` and `pipeline2` use shards.encoder=tokenizers (the encoder before tiktoken was the default).

The tokens/s per CPU-second of raw encode_batch (all its threads' CPU time) is the per-core rate
the 16-core projection uses (benchmarks/bench_prep_pipeline.py measures the whole pipeline).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _stats import Bench, add_common_args, interleaved, rate_ratios, spread  # noqa: E402

from data_prep.document import Document  # noqa: E402
from data_prep.pipeline.stage_merge import DocumentsWriter  # noqa: E402
from data_prep.pipeline.stage_tokenize import tokenize_to_shards  # noqa: E402
from data_prep.tokens.fast_encode import FastEncoder, cores, tiktoken_encoding  # noqa: E402
from data_prep.tokens.shards import split_of  # noqa: E402
from data_prep.tokens.tokenizer import train_bpe  # noqa: E402

SHARED = Path(os.environ.get("BIOGPT_SHARED", ROOT.parent / "shared")) / "data"
CORPUS = SHARED / "corpus" / "corpus.jsonl.gz"
TOKENIZER_SAMPLE_BYTES = 8_000_000


def corpus_texts(max_bytes: float) -> list[tuple[str, str]]:
    """(id, text) of the corpus's documents, in file order, up to max_bytes of UTF-8."""
    if not CORPUS.is_file():
        raise SystemExit(f"{CORPUS}: missing; the benchmark needs ../shared/data (see its PROVENANCE.md)")
    out, total = [], 0
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append((d["id"], d["text"]))
            total += len(d["text"].encode())
            if total >= max_bytes:
                break
    return out


def as_tiktoken(tok):
    """The same BPE as a tiktoken Encoding (rank = our id, specials left out): fast_encode.py."""
    enc, reason = tiktoken_encoding(tok, name="bench_bpe")
    if enc is None:
        raise SystemExit(f"tiktoken cannot encode for the benchmark's tokenizer: {reason}")
    return enc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=8.0, help="MB of corpus text to tokenize")
    ap.add_argument("--vocab", type=int, default=42_384)
    add_common_args(ap, repeats=5, warmup=1)
    args = ap.parse_args()
    n_cores = cores()
    with Bench("bench_tokenize", args) as b:
        tmp = Path(tempfile.mkdtemp(prefix="bench_tokenize_"))
        try:
            sample = [t for _, t in corpus_texts(TOKENIZER_SAMPLE_BYTES)]
            t = time.perf_counter()
            tok = train_bpe(sample, args.vocab)
            print(f"tokenizer: {tok.get_vocab_size():,} entries (asked {args.vocab:,}), trained on "
                  f"{sum(len(s.encode()) for s in sample) / 1e6:.1f} MB in {time.perf_counter() - t:.1f} s")
            if tok.get_vocab_size() != args.vocab:
                raise SystemExit(f"the tokenizer has {tok.get_vocab_size()} entries, not {args.vocab}: "
                                 f"the {TOKENIZER_SAMPLE_BYTES / 1e6:.0f} MB sample is too small for that vocabulary")
            docs = corpus_texts(args.mb * 1e6)
            texts = [t for _, t in docs]
            # 1,024-document row groups: with processes > 0 a worker encodes one row group per job
            # (production parts have 10,000), so a few MB of text still make several jobs.
            w = DocumentsWriter(tmp / "documents", 20_000, 1_024, "zstd")
            for doc_id, text in docs:
                w.add(Document(id=doc_id, text=text, source="bench", license="bench"), split_of(doc_id, 0.005))
            parts = w.close()
            n_bytes = sum(len(x.encode()) for x in texts)
            # tiktoken has no normaliser or prefix space: give it what the HF pipeline feeds its model
            enc = as_tiktoken(tok)
            with FastEncoder(tok, enc, threads=1) as fast:
                tt_texts = [fast.prepared(x) for x in texts]
            if None in tt_texts:  # the raw case times tiktoken alone: none may need tokenizers
                raise SystemExit(f"{tt_texts.count(None)} texts hold an added token or a post-3.2 code point")

            counts: dict[str, int] = {}

            def raw() -> None:
                n = 0
                for i in range(0, len(texts), 1024):
                    n += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + 1024], add_special_tokens=False))
                counts["raw"] = n

            shard_sha: dict[str, bytes] = {}

            def pipe(procs: int, encoder: str = "tokenizers") -> None:
                shutil.rmtree(tmp / "shards", ignore_errors=True)
                out = tokenize_to_shards(tmp, parts, tok, max_tokens=1 << 22, batch_docs=1024, processes=procs,
                                         encoder=encoder)
                name = f"pipe{procs}_{encoder}"
                counts[name] = sum(s.tokens - s.documents for lst in out.values() for s in lst)  # minus EOS
                shard_sha[name] = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((tmp / "shards").iterdir()))).digest()

            def tiktok() -> None:
                counts["tiktoken"] = sum(len(x) for x in enc.encode_ordinary_batch(tt_texts, num_threads=n_cores))

            # tokens per CPU-second of raw encode_batch (its Rust threads included): the per-core rate
            c0 = time.process_time()
            raw()
            raw_cpu_rate = counts["raw"] / (time.process_time() - c0)
            secs = interleaved({"raw": raw, "pipeline": lambda: pipe(0), "pipeline2": lambda: pipe(2),
                                "pipeline_tiktoken": lambda: pipe(0, "tiktoken"),
                                "pipeline_tiktoken2": lambda: pipe(2, "tiktoken"), "tiktoken": tiktok},
                               args.repeats, args.warmup)
            n = counts["raw"]
            if not counts["pipe0_tokenizers"] == counts["pipe2_tokenizers"] == counts["pipe0_tiktoken"] \
                    == counts["pipe2_tiktoken"] == n:
                raise SystemExit(f"token counts differ: {counts}")
            if len(set(shard_sha.values())) != 1:
                raise SystemExit("the shards differ between the encoders/process counts: " + ", ".join(shard_sha))
            agree = sum(a.ids == bb for a, bb in zip(tok.encode_batch(texts[:2000], add_special_tokens=False),
                                                     enc.encode_ordinary_batch(tt_texts[:2000]), strict=True))
            print(f"text: {len(texts):,} documents, {n_bytes / 1e6:.1f} MB, {n:,} tokens; tiktoken: {counts['tiktoken']:,} "
                  f"tokens, identical ids for {agree:,} of the first {min(2000, len(texts)):,} documents")
            for name, v in secs.items():
                print(f"  {name:17s} {n / min(v) / 1e6:6.3f} M tokens/s best, s per round {spread(v)}")
            print(f"raw encode_batch: {raw_cpu_rate / 1e6:.3f} M tokens per CPU-second (= per core)")
            b.record("tokens", n)
            b.record("raw_tokens_per_cpu_s", raw_cpu_rate)
            b.record("seconds", secs)
            b.ratio("pipeline / raw encode_batch, tokens/s", rate_ratios(secs["pipeline"], secs["raw"]), goal=0.8)
            b.ratio("pipeline with 2 processes / raw encode_batch", rate_ratios(secs["pipeline2"], secs["raw"]))
            b.ratio("pipeline_tiktoken / raw encode_batch", rate_ratios(secs["pipeline_tiktoken"], secs["raw"]))
            b.ratio("pipeline_tiktoken / pipeline", rate_ratios(secs["pipeline_tiktoken"], secs["pipeline"]))
            b.ratio("pipeline_tiktoken2 / pipeline2 (2 processes each)",
                    rate_ratios(secs["pipeline_tiktoken2"], secs["pipeline2"]))
            b.ratio("raw encode_batch / tiktoken (independent BPE)", rate_ratios(secs["raw"], secs["tiktoken"]))
            b.ratio("pipeline / tiktoken", rate_ratios(secs["pipeline"], secs["tiktoken"]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
