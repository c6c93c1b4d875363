"""The whole `python -m data_prep` pipeline on baseline-format files of real records: time per stage,
parallel efficiency, peak memory per worker and of the merge/dedup stage and how it grows with the
corpus, and the projection of the 2026 PubMed baseline on a 16-core node, with its arithmetic.

    .venv/bin/python benchmarks/bench_prep_pipeline.py --json runs/bench/prep_pipeline.json   # 30-40 min, quiet 2 cores
    .venv/bin/python benchmarks/bench_prep_pipeline.py --files 2 --records-per-file 300 --repeats 1   # smoke run

Inputs, built once in a temporary folder: `--files` files named like the baseline
(pubmed26n0001.xml.gz ...) of `--records-per-file` PubmedArticle records each, cycling through
the real records of ../shared/data/pubmed (legacy MedlineCitations wrapped, as bench_parse.py
does), every copy with its own PMID and its own text (a short registry phrase appended to the
abstract), so dedup keeps them and every stage sees realistic records; filters drop what they
drop in the real sample (no abstract, non-English, retractions). A second set, the same number of
files with half the records each, gives the growth of memory with the corpus. Decontamination runs
against the real evaluation sets in ../shared/data (decontam.eval_dir), as in production.

Runs, each `python -m data_prep source=local ...` in a fresh out_dir, rounds interleaved, with
25,000-row documents parts (several parts, so the merge writes them in parallel as it does at scale):
  1core    workers=1, pinned to one CPU, one encoding thread: every stage on one core
  2cores   workers=2, all CPUs (map, documents parts and shards in 2 processes each)
  array2   two `stage=map task.count=2` tasks side by side, then `stage=reduce`
  mem_*    2cores on both sets with 1,000-row parts (once each): memory growth per map worker and
           of the merge's main process, and a part writer's memory per row
Time per stage comes from the run's summary.json; memory from sampling the process tree
(/proc VmRSS every 0.2 s for the stage it happens in, VmHWM for exact peaks; a child belongs to
the stage it appeared in). What a stage costs whatever the size (eval sets, language model,
worker pools, the tiktoken encoder) is
measured by 2-core runs on 2 files of 50 records (3), taken out before scaling and added back
once. The projection does not extrapolate wall times: each stage's CPU time is split into the main
process's (serial) and the worker processes' (parallel, divided by the cores), sampled from
/proc/<pid>/stat (own and reaped children's ticks).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _stats import Bench, add_common_args, median, spread  # noqa: E402

SHARED_DATA = Path(os.environ.get("BIOGPT_SHARED", ROOT.parent / "shared")) / "data"
SHARED_PUBMED = SHARED_DATA / "pubmed"
HEADER = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
          b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
          b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')
STAGES = ("inputs", "map", "merge", "tokenizer", "shards")
# The 2026 baseline as NCBI lists it, and the node the goal is set for.
BASELINE_FILES = 1_334
BASELINE_CITATIONS = 41_000_000
NODE_CORES = 16
GOAL_MIN = 30
ROWS_SMALL = 1_000  # documents.rows_per_file in the memory-growth runs
ROWS_TIMED = 25_000  # and in the timed runs: several parts, so the merge writes them in parallel as at scale
TINY_RECORDS = 50  # per file, in the runs that measure each stage's fixed cost
ROWS_DEFAULT = 200_000  # documents.rows_per_file's default: what a part writer holds in production


# ---- inputs --------------------------------------------------------------------------------------

def record_templates(folder: Path) -> list[bytes]:
    """The real PubmedArticles of the shared samples with @@PMID@@ for their PMIDs and @@TAG@@ at
    the end of the abstract (or the title when there is none)."""
    from lxml import etree

    out: list[bytes] = []
    for path in sorted(folder.glob("*.xml*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for _, el in etree.iterparse(f, events=("end",), tag=("PubmedArticle", "MedlineCitation"),
                                         resolve_entities=False, no_network=True, load_dtd=False):
                if el.tag == "MedlineCitation":
                    parent = el.getparent()
                    if parent is not None and parent.tag == "PubmedArticle":
                        continue
                    art = etree.Element("PubmedArticle")
                    art.append(el)
                    el = art
                mc = el.find("MedlineCitation")
                if mc is None or mc.find("PMID") is None:
                    continue
                mc.find("PMID").text = "@@PMID@@"
                for aid in el.iterfind("PubmedData/ArticleIdList/ArticleId[@IdType='pubmed']"):
                    aid.text = "@@PMID@@"
                texts = mc.findall("Article/Abstract/AbstractText") or mc.findall("Article/ArticleTitle")
                if not texts:
                    continue
                last = texts[-1]
                if len(last):
                    last[-1].tail = (last[-1].tail or "") + "@@TAG@@"
                else:
                    last.text = (last.text or "") + "@@TAG@@"
                out.append(etree.tostring(el, with_tail=False) + b"\n")
    if not out:
        raise SystemExit(f"no PubMed records under {SHARED_PUBMED}; the benchmark needs ../shared/data")
    return out


def build_inputs(folder: Path, files: int, per_file: int, templates: list[bytes], first_pmid: int) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    k, total = 0, 0
    for i in range(files):
        path = folder / f"pubmed26n{i + 1:04d}.xml.gz"
        with gzip.open(path, "wb", compresslevel=6) as f:
            f.write(HEADER)
            for _ in range(per_file):
                pmid = str(first_pmid + k).encode()
                tag = f" Registry entry {first_pmid + k}.".encode()
                f.write(templates[k % len(templates)].replace(b"@@PMID@@", pmid).replace(b"@@TAG@@", tag))
                k += 1
            f.write(b"</PubmedArticleSet>\n")
        total += path.stat().st_size
    return {"dir": str(folder), "files": files, "records": k, "gz_bytes": total}


# ---- memory sampling ------------------------------------------------------------------------------

def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(the process's own CPU ticks, its waited-for children's), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


class TreeSampler:
    """Samples VmRSS (for the timeline) and VmHWM (exact peak) of root processes and their children."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.roots: list[int] = []
        self.hwm_kb: dict[int, int] = {}
        self.first_seen: dict[int, float] = {}  # a child's stage is the one it appeared in
        self.timeline: list[tuple[float, int, int]] = []  # (time, roots' RSS kB, children's RSS kB)
        self.cpu: list[tuple[float, int, int]] = []  # (time, roots' CPU ticks, children's CPU ticks, live or reaped)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, roots: list[int]) -> TreeSampler:
        self.roots = roots
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            now, root_rss, child_rss = time.time(), 0, 0
            root_cpu, child_cpu = 0, 0
            for root in self.roots:
                for pid in [root, *_children(root)]:
                    ticks = _cpu_ticks(pid)
                    if ticks is not None:
                        if pid in self.roots:
                            root_cpu += ticks[0]
                            child_cpu += ticks[1]  # children that exited (the pools are joined)
                        else:
                            child_cpu += ticks[0]
                    rss = _status_kb(pid, "VmRSS:")
                    hwm = _status_kb(pid, "VmHWM:")
                    if rss is None:
                        continue
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm or rss)
                    self.first_seen.setdefault(pid, now)
                    if pid in self.roots:
                        root_rss += rss
                    else:
                        child_rss += rss
            self.timeline.append((now, root_rss, child_rss))
            self.cpu.append((now, root_cpu, child_cpu))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak_in(self, t0: float, t1: float, children: bool = False) -> float:
        """Highest sampled RSS (MB) of the roots (or all children together) within [t0, t1]."""
        vals = [(c if children else r) for t, r, c in self.timeline if t0 <= t <= t1]
        return max(vals, default=0) / 1024

    def cpu_in(self, t0: float, t1: float) -> tuple[float, float]:
        """CPU seconds of the roots and of their children within [t0, t1] (0.2 s sampling)."""
        inside = [c for c in self.cpu if t0 - 0.1 <= c[0] <= t1 + 0.1]
        if len(inside) < 2:
            return 0.0, 0.0
        (_, r0, c0), (_, r1, c1) = inside[0], inside[-1]
        return (r1 - r0) / CLK_TCK, max(0, c1 - c0) / CLK_TCK

    def worker_peaks(self, window: tuple[float, float] | None = None) -> list[float]:
        """Peak RSS (MB) of each child process (started within `window`, when given)."""
        return [kb / 1024 for pid, kb in self.hwm_kb.items() if pid not in self.roots
                and (window is None or window[0] - 1 <= self.first_seen[pid] <= window[1])]

    def root_peaks(self) -> list[float]:
        return [self.hwm_kb.get(pid, 0) / 1024 for pid in self.roots]


# ---- runs ---------------------------------------------------------------------------------------

def prep_cmd(inputs: str, out: Path, *extra: str) -> list[str]:
    # Decontamination against the real evaluation sets (PubMedQA, BC5CDR, DDI, KD-DTI, HoC), as a
    # production run does: without eval_dir the merge would skip the 13-gram matching.
    decontam = [f"decontam.eval_dir={SHARED_DATA}"] if (SHARED_DATA / "pubmedqa").is_dir() else []
    return [sys.executable, "-m", "data_prep", "source=local", f"source.path={inputs}", f"out_dir={out}",
            "progress=false", "summary.histogram=false", "summary.print=false", *decontam, *extra]


def _launch(cmd: list[str], log: Path, one_core: bool) -> subprocess.Popen:
    env = dict(os.environ)
    if one_core:  # every stage on one CPU: worker processes and tokenizers' Rust threads alike
        env.update(RAYON_NUM_THREADS="1", RAYON_RS_NUM_CPUS="1", OMP_NUM_THREADS="1")
    cpu = min(os.sched_getaffinity(0))
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if one_core else None
    with open(log, "wb") as f:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, preexec_fn=pre)


def _wait(procs: list[subprocess.Popen], logs: list[Path], timeout: float) -> None:
    for p, log in zip(procs, logs, strict=True):
        rc = p.wait(timeout=timeout)
        if rc != 0:
            raise SystemExit(f"data_prep failed (exit {rc}); log {log}:\n{log.read_text()[-3000:]}")


def stage_windows(out: Path) -> tuple[dict, dict[str, tuple[float, float]]]:
    """(summary.json, wall-clock window of each stage): run() starts `seconds` before the summary's
    mtime, and its stages run in STAGES order."""
    path = out / "summary.json"
    summary = json.loads(path.read_text())
    t = path.stat().st_mtime - summary["seconds"]
    windows = {}
    for name in STAGES:
        dur = summary["stage_seconds"].get(name)
        if dur is not None:
            windows[name] = (t, t + dur)
            t += dur
    return summary, windows


def run_pipeline(label: str, inputs: str, work: Path, workers: int, one_core: bool,
                 extra: tuple[str, ...] = ()) -> dict[str, Any]:
    out = work / label
    shutil.rmtree(out, ignore_errors=True)
    log = work / f"{label}.log"
    t0 = time.perf_counter()
    proc = _launch(prep_cmd(inputs, out, f"workers={workers}", *extra), log, one_core)
    sampler = TreeSampler().start([proc.pid])
    try:
        _wait([proc], [log], timeout=6 * 3600)
    finally:
        sampler.stop()
    wall = time.perf_counter() - t0
    summary, windows = stage_windows(out)
    r = {"label": label, "wall_s": wall, "stage_s": summary["stage_seconds"], "counts": summary["counts"],
         "main_peak_mb": sampler.root_peaks()[0],
         "main_stage_peak_mb": {k: sampler.peak_in(*w) for k, w in windows.items()},
         "stage_cpu_s": {k: sampler.cpu_in(*w) for k, w in windows.items()},  # (main, workers)
         "worker_peaks_mb": sampler.worker_peaks()}
    # The map stage runs in the main process with one worker, in pool processes with more (the
    # merge forks its own pool to write documents parts: those children are not map workers).
    map_workers = sampler.worker_peaks(windows.get("map"))
    r["map_worker_peak_mb"] = max(map_workers) if workers > 1 and map_workers else \
        r["main_stage_peak_mb"].get("map", 0.0)
    part_writers = sampler.worker_peaks(windows.get("merge"))  # the merge's pool: documents part writers
    r["part_writer_peak_mb"] = max(part_writers) if part_writers else None
    r.update(run_outputs(out))
    shutil.rmtree(out, ignore_errors=True)
    return r


def run_outputs(out: Path) -> dict[str, Any]:
    """What the projection needs from a finished out_dir: UTF-8 bytes of the kept documents'
    text (documents/*.parquet, the contract of docs/architecture.md) and the tokenizer sample caps
    of the composed config (.hydra/config.yaml)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from omegaconf import OmegaConf

    text_bytes = sum(int(pc.sum(pc.binary_length(pq.read_table(p, columns=["text"])["text"])).as_py() or 0)
                     for p in sorted((out / "documents").glob("*.parquet")))
    cfg = OmegaConf.to_container(OmegaConf.load(out / ".hydra" / "config.yaml"))
    tok = cfg.get("tokenizer", {})
    return {"text_bytes": text_bytes, "tokenizer_cfg": {k: tok[k] for k in ("max_train_docs", "max_train_bytes")
                                                        if k in tok},
            "documents_rows_per_file": cfg.get("documents", {}).get("rows_per_file")}


def run_array(inputs: str, work: Path, count: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """`count` map tasks side by side (as a Slurm array would run them), then the reduce stage."""
    out = work / "array"
    shutil.rmtree(out, ignore_errors=True)
    logs = [work / f"array.map{i}.log" for i in range(count)]
    t0 = time.perf_counter()
    procs = [_launch(prep_cmd(inputs, out, "stage=map", f"task.index={i}", f"task.count={count}", *extra), logs[i], False)
             for i in range(count)]
    sampler = TreeSampler().start([p.pid for p in procs])
    try:
        _wait(procs, logs, timeout=6 * 3600)
    finally:
        sampler.stop()
    map_wall = time.perf_counter() - t0
    red_log = work / "array.reduce.log"
    t1 = time.perf_counter()
    proc = _launch(prep_cmd(inputs, out, "stage=reduce", "workers=2", *extra), red_log, False)
    rsampler = TreeSampler().start([proc.pid])
    try:
        _wait([proc], [red_log], timeout=6 * 3600)
    finally:
        rsampler.stop()
    summary, windows = stage_windows(out)
    r = {"label": "array2", "map_wall_s": map_wall, "reduce_wall_s": time.perf_counter() - t1,
         "stage_s": summary["stage_seconds"], "counts": summary["counts"], "map_task_peaks_mb": sampler.root_peaks(),
         "reduce_stage_peak_mb": {k: rsampler.peak_in(*w) for k, w in windows.items()}}
    shutil.rmtree(out, ignore_errors=True)
    return r


# ---- projection -------------------------------------------------------------------------------------

def projection(one: list[dict], two: list[dict], tokens_cfg: dict,
               fixed: dict[str, dict[str, float]]) -> tuple[dict[str, float], list[str]]:
    """Minutes per stage for the baseline on NODE_CORES cores from the CPU time each stage spent in
    the main process (serial work) and in worker processes (parallel work) on 2 cores, scaled by
    the baseline's size; the workers are assumed to keep the per-core speed they had on 2 cores.
    What a stage costs whatever the size (loading the evaluation sets and the language model,
    starting worker pools, building the tiktoken encoder) is measured by the tiny runs (`fixed`:
    stage -> wall, main and workers CPU seconds), taken out before scaling and added back once."""
    def med(runs, f):
        return median([f(r) for r in runs])

    c = one[0]["counts"]
    parsed = c["parsed"]
    kept_frac = c["kept"] / parsed
    tok_per_doc = (c["train_tokens"] + c["val_tokens"]) / c["kept"]
    kept = BASELINE_CITATIONS * kept_frac
    tokens = kept * tok_per_doc
    scale = {"map": BASELINE_CITATIONS / parsed, "merge": BASELINE_CITATIONS / parsed,
             "shards": tokens / (c["train_tokens"] + c["val_tokens"])}
    m, lines = {}, []
    for st, what in (("map", "records"), ("merge", "records"), ("shards", "tokens")):
        f = fixed[st]
        main = max(0.0, med(two, lambda r, st=st: r["stage_cpu_s"][st][0]) - f["main"])
        workers = max(0.0, med(two, lambda r, st=st: r["stage_cpu_s"][st][1]) - f["workers"])
        piped = st == "shards"  # the workers encode while the main process writes: the slower one sets the pace
        t2_model = f["wall"] + (max(main, workers / 2) if piped else main + workers / 2)
        t16 = max(main, workers / NODE_CORES) if piped else main + workers / NODE_CORES
        m[st] = (f["wall"] + t16 * scale[st]) / 60
        op = "max" if piped else "+"
        lines.append(f"{st:<9} CPU s on 2 cores, less the fixed cost: main process {main:.2f} (serial), workers "
                     f"{workers:.1f} (parallel) [2-core wall: model {t2_model:.1f} s, measured "
                     f"{med(two, lambda r, st=st: r['stage_s'][st]):.1f} s]; on {NODE_CORES}: {main:.2f} {op} "
                     f"{workers:.1f}/{NODE_CORES} = {t16:.2f} s x {scale[st]:,.0f} (baseline {what} / measured) + "
                     f"fixed {f['wall']:.1f} s = {m[st]:.1f} min")
    tok_docs = min(tokens_cfg["max_train_docs"], c["train_documents"])
    bytes_per_doc = tokens_cfg["bytes_per_doc"]
    bpe_rate = med(two, lambda r: min(tok_docs * bytes_per_doc, tokens_cfg["max_train_bytes"]) / r["stage_s"]["tokenizer"])
    sample_bytes = min(tokens_cfg["max_train_docs"] * bytes_per_doc, tokens_cfg["max_train_bytes"])
    m["tokenizer"] = sample_bytes / bpe_rate / 60
    lines.insert(2, f"tokenizer sample min({tokens_cfg['max_train_docs']:,} docs x {bytes_per_doc:,.0f} B, "
                    f"{tokens_cfg['max_train_bytes'] / 1e9:.1f} GB) = {sample_bytes / 1e9:.2f} GB / {bpe_rate / 1e6:.2f} MB/s "
                    f"(measured on {os.cpu_count()} cores; no credit for more: merges are sequential) = {m['tokenizer']:.1f} min")
    m["total"] = m["map"] + m["merge"] + m["tokenizer"] + m["shards"]
    lines.append(f"total     {m['total']:.1f} min (goal < {GOAL_MIN} min; download not included; {kept / 1e6:.1f}M kept "
                 f"documents, {tokens / 1e9:.2f}B tokens; assumes {NODE_CORES} workers each keep the per-core speed "
                 f"measured on 2 cores)")
    return m, lines


def merge_memory_growth(mem: dict[str, dict], timed: list[dict], writers: int) -> tuple[float, float, str]:
    """(MB per 1k records of the merge's main process, projected GB of the merge on the baseline,
    the arithmetic). The main process holds arrays that grow with the corpus (from the two memory
    runs); each of `writers` part writers holds one documents part (documents.rows_per_file rows:
    its cost per row from the timed runs' 25,000-row parts against the memory runs' 1,000-row ones)."""
    half, full = mem["half"], mem["full"]
    a, b = half["counts"]["parsed"], full["counts"]["parsed"]
    ma, mb = half["main_stage_peak_mb"].get("merge", 0.0), full["main_stage_peak_mb"].get("merge", 0.0)
    slope = (mb - ma) / max(1, b - a) * 1000  # MB per 1k records
    base = mb - slope * b / 1000
    main_gb = (base + slope * BASELINE_CITATIONS / 1000) / 1024
    text = (f"merge main process peak RSS: {ma:,.0f} MB at {a:,} records, {mb:,.0f} MB at {b:,} -> {slope:.3f} MB "
            f"per 1k records: {base:,.0f} + {slope:.3f} x {BASELINE_CITATIONS / 1000:,.0f} = {main_gb:.1f} GB for the baseline")
    small = full.get("part_writer_peak_mb")
    big = [r["part_writer_peak_mb"] for r in timed if r.get("part_writer_peak_mb")]
    if not small or not big:
        return slope, main_gb, text + "; part writers not observed"
    # A writer is forked from the main process: its RSS counts the pages it shares with it. What it
    # adds is what grows with its part (per row), plus what it holds above the main at the smallest part.
    per_row = max(0.0, median(big) - small) / (ROWS_TIMED - ROWS_SMALL)
    own_mb = max(0.0, small - mb) + per_row * ROWS_DEFAULT
    total = main_gb + writers * own_mb / 1024
    return slope, total, text + (
        f"; a part writer (forked: its RSS includes pages shared with the main process): {small:,.0f} MB with "
        f"{ROWS_SMALL:,}-row parts, {median(big):,.0f} MB with {ROWS_TIMED:,}-row parts -> {1024 * per_row:,.1f} kB "
        f"per row, {max(0.0, small - mb):,.0f} MB above the main process: {own_mb / 1024:.2f} GB of its own with the "
        f"default {ROWS_DEFAULT:,}-row parts; merge stage on {writers} cores: {main_gb:.1f} + {writers} x "
        f"{own_mb / 1024:.2f} = {total:.1f} GB")


# ---- main ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--records-per-file", type=int, default=15_000)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--report", type=Path, default=None,
                    help="print the report again from a --json file of an earlier run (no measuring)")
    add_common_args(ap, repeats=3, warmup=0)
    args = ap.parse_args()
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        runs = saved["values"]["runs"]
        print(f"report of {args.report} (measured with {' '.join(saved['argv'])}; machine load then: {saved['load']})")
        report(Bench("bench_prep_pipeline", None), runs["1core"], runs["2cores"], runs["array2"], runs["memory"],
               runs["tiny"])
        return
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs at least 2 CPUs (it measures 1 against 2)")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_prep_"))
    work.mkdir(parents=True, exist_ok=True)
    with Bench("bench_prep_pipeline", args) as b:
        try:
            t = time.perf_counter()
            templates = record_templates(SHARED_PUBMED)
            full = build_inputs(work / "in_full", args.files, args.records_per_file, templates, 40_000_000)
            half = build_inputs(work / "in_half", args.files, max(1, args.records_per_file // 2), templates, 50_000_000)
            print(f"inputs: {full['files']} files x {args.records_per_file:,} records ({full['gz_bytes'] / 1e6:.0f} MB gz) "
                  f"and a half-size set, from {len(templates)} distinct real records, in {time.perf_counter() - t:.0f} s")
            one, two, arr = [], [], []
            timed = (f"documents.rows_per_file={ROWS_TIMED}",)
            for r in range(args.warmup + args.repeats):
                runs = [("1core", lambda: run_pipeline("1core", full["dir"], work, 1, True, timed)),
                        ("2cores", lambda: run_pipeline("2cores", full["dir"], work, 2, False, timed)),
                        ("array2", lambda: run_array(full["dir"], work, 2, timed))]
                k = r % len(runs)
                got = {}
                for name, fn in runs[k:] + runs[:k]:
                    got[name] = fn()
                    print(f"  round {r} {name}: {json.dumps(_short(got[name]))}", flush=True)
                if r >= args.warmup:
                    one.append(got["1core"])
                    two.append(got["2cores"])
                    arr.append(got["array2"])
            # Memory growth: the documents writer buffers documents.rows_per_file rows (200,000 by
            # default: bounded, but larger than these inputs), so these two runs make it small to
            # leave what grows with the corpus itself.
            small_parts = (f"documents.rows_per_file={ROWS_SMALL}",)
            mem = {"half": run_pipeline("mem_half", half["dir"], work, 2, False, small_parts),
                   "full": run_pipeline("mem_full", full["dir"], work, 2, False, small_parts)}
            # What each stage costs whatever the size: the same runs on 2 files of TINY_RECORDS records.
            tiny_in = build_inputs(work / "in_tiny", 2, TINY_RECORDS, templates, 60_000_000)
            tiny: dict[str, list[dict]] = {"2cores": []}
            for _ in range(3):
                tiny["2cores"].append(run_pipeline("tiny2", tiny_in["dir"], work, 2, False, timed))
            b.record("inputs", {"full": full, "half": half, "tiny": tiny_in})
            b.record("runs", {"1core": one, "2cores": two, "array2": arr, "memory": mem, "tiny": tiny})
            report(b, one, two, arr, mem, tiny)
        finally:
            if args.work is None:
                shutil.rmtree(work, ignore_errors=True)


def _short(r: dict) -> dict:
    keep = ("wall_s", "map_wall_s", "reduce_wall_s", "stage_s", "main_peak_mb", "map_worker_peak_mb")
    return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items() if k in keep}


def report(b: Bench, one: list[dict], two: list[dict], arr: list[dict], mem: dict[str, dict],
           tiny: dict[str, list[dict]]) -> None:
    c = one[0]["counts"]
    print(f"\nrecords {c['parsed']:,}, kept {c['kept']:,} ({100 * c['kept'] / c['parsed']:.0f}%), duplicates "
          f"{c.get('duplicates', 0):,}, tokens {c['train_tokens'] + c['val_tokens']:,}")
    print(f"{'stage':<10} {'1 core s':>22} {'2 cores s':>22} {'array2 s':>22}")
    for st in STAGES:
        cols = []
        for runs in (one, two, arr):
            v = [r["stage_s"][st] for r in runs if st in r["stage_s"]]
            cols.append(spread(v, "{:.1f}") if v else "-")
        print(f"{st:<10} {cols[0]:>22} {cols[1]:>22} {cols[2]:>22}")
    print(f"{'map wall':<10} {'':>22} {'':>22} {spread([r['map_wall_s'] for r in arr], '{:.1f}'):>22}")
    print(f"{'total':<10} {spread([r['wall_s'] for r in one], '{:.1f}'):>22} "
          f"{spread([r['wall_s'] for r in two], '{:.1f}'):>22} "
          f"{spread([r['map_wall_s'] + r['reduce_wall_s'] for r in arr], '{:.1f}'):>22}")
    b.ratio("map stage speed-up, workers 2 / 1", [o["stage_s"]["map"] / t["stage_s"]["map"]
                                                   for o, t in zip(one, two, strict=True)], goal=1.8)
    b.ratio("map stage speed-up, task.count 2 / 1", [o["stage_s"]["map"] / a["map_wall_s"]
                                                      for o, a in zip(one, arr, strict=True)], goal=1.8)
    b.ratio("shard stage speed-up, 2 cores / 1", [o["stage_s"]["shards"] / t["stage_s"]["shards"]
                                                  for o, t in zip(one, two, strict=True)], goal=1.8)
    b.ratio("whole pipeline speed-up, 2 cores / 1", [o["wall_s"] / t["wall_s"] for o, t in zip(one, two, strict=True)])
    per_file = c["parsed"] / max(1, c.get("input_files", 1))
    wk = [r["map_worker_peak_mb"] for r in two]
    half_file = mem["half"]["counts"]["parsed"] / max(1, mem["half"]["counts"].get("input_files", 1))
    w_half = mem["half"]["map_worker_peak_mb"]
    w_slope = (median(wk) - w_half) / max(1.0, per_file - half_file) * 1000  # MB per 1k records in a file
    w_base = BASELINE_CITATIONS / BASELINE_FILES  # records in an average baseline file
    print(f"\npeak RSS per map worker (2 cores): {spread(wk, '{:,.0f}')} MB for {per_file:,.0f} records per file, "
          f"{w_half:,.0f} MB for {half_file:,.0f}: {w_slope:.2f} MB per 1k records in a file -> "
          f"{median(wk) + w_slope * (w_base - per_file) / 1000:,.0f} MB for a baseline file (~{w_base:,.0f} records)")
    b.record("map_worker_mb_per_1k_records_in_file", w_slope)
    for st in ("merge", "tokenizer", "shards"):
        print(f"peak RSS of the main process in {st}: {spread([r['main_stage_peak_mb'].get(st, 0) for r in two], '{:,.0f}')} MB")
    slope, proj, text = merge_memory_growth(mem, two, NODE_CORES)
    print(text)
    b.record("merge_mb_per_1k_records", slope)
    b.record("merge_peak_baseline_gb", proj)
    tok_cfg = {**one[0]["tokenizer_cfg"], "bytes_per_doc": one[0]["text_bytes"] / max(1, c["kept"])}
    if {"max_train_docs", "max_train_bytes"} - set(tok_cfg):
        raise SystemExit(f"the prep config has no tokenizer.max_train_docs/max_train_bytes: {tok_cfg}")
    fixed = {st: {"wall": median([r["stage_s"][st] for r in tiny["2cores"]]),
                  "main": median([r["stage_cpu_s"][st][0] for r in tiny["2cores"]]),
                  "workers": median([r["stage_cpu_s"][st][1] for r in tiny["2cores"]])}
             for st in ("map", "merge", "shards")}
    print("fixed cost per stage (2-core runs on " + f"{tiny['2cores'][0]['counts']['parsed']} records; wall s, CPU s "
          "main / workers): " + ", ".join(f"{st} {v['wall']:.2f} s ({v['main']:.2f} / {v['workers']:.2f})"
                                          for st, v in fixed.items()))
    for st in ("map", "merge", "shards"):  # per-core speed: all CPU on 1 core against all CPU on 2
        cpu1 = median([sum(r["stage_cpu_s"][st]) for r in one])
        cpu2 = median([sum(r["stage_cpu_s"][st]) for r in two])
        print(f"{st}: CPU s for the whole stage on 1 core {cpu1:.1f}, on 2 cores {cpu2:.1f} ({cpu2 / max(cpu1, 1e-9):.2f}x: "
              "contention and process overhead)")
    minutes, lines = projection(one, two, tok_cfg, fixed)
    print(f"\nprojection: 2026 PubMed baseline ({BASELINE_FILES:,} files, ~{BASELINE_CITATIONS / 1e6:.0f}M citations) "
          f"on {NODE_CORES} cores")
    for line in lines:
        print("  " + line)
    b.record("projection_min", minutes)
    b.record("projection_text", lines)


if __name__ == "__main__":
    main()
