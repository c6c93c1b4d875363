"""PubMed parsing speed: data_prep.parse.pubmed.iter_pubmed vs pubmed_parser vs a bare lxml iterparse.

Builds a baseline-format `.xml.gz` (PubmedArticleSet of PubmedArticle, default 30,000 records) by
repeating the real records in ../shared/data/pubmed (the 2016 MedlineCitations are wrapped in
PubmedArticle, as the current baseline has them) in a temporary folder, then times, in one
process and in the same run (records per CPU-second of this one process, see `measure`):

- `iter_pubmed`: every Document field (text with labels and MathML, MeSH, types, DOI, ...);
- `pubmed_parser.parse_medline_xml` (0.5.x, default options): the reference we must beat by 3x;
- a bare `lxml.etree.iterparse` pulling only PMID, title and abstract: near the gzip+XML limit.

Rounds interleave the parsers (the order rotates); each round gives one ratio per pair, and the
ratio is reported as the median with its range over rounds (benchmarks/_stats.py).

    .venv/bin/python benchmarks/bench_parse.py [--records 30000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _stats import Bench, add_common_args, interleaved, rate_ratios  # noqa: E402

from data_prep.parse.pubmed import iter_pubmed  # noqa: E402
from data_prep.parse.xml_safety import open_binary  # noqa: E402

SHARED_PUBMED = ROOT.parent / "shared" / "data" / "pubmed"
HEADER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'
)


def real_records(folder: Path) -> list[bytes]:
    """Every real PubmedArticle in the shared samples, serialised (legacy citations wrapped)."""
    records: list[bytes] = []
    for path in sorted(folder.glob("*.xml*")):
        with open_binary(path) as f:
            for _, el in etree.iterparse(f, events=("end",), tag=("PubmedArticle", "MedlineCitation"),
                                         resolve_entities=False, no_network=True, load_dtd=False):
                if el.tag == "MedlineCitation":
                    if el.getparent() is not None and el.getparent().tag == "PubmedArticle":
                        continue
                    records.append(b"<PubmedArticle>" + etree.tostring(el, with_tail=False) + b"</PubmedArticle>\n")
                else:
                    records.append(etree.tostring(el, with_tail=False) + b"\n")
    return records


def build_file(out: Path, n: int) -> int:
    records = real_records(SHARED_PUBMED)
    if not records:
        raise SystemExit(f"no PubMed records found under {SHARED_PUBMED}; the benchmark needs ../shared/data")
    with gzip.open(out, "wb", compresslevel=6) as f:
        f.write(HEADER)
        for i in tqdm(range(n), desc="building", unit="rec", leave=False):
            f.write(records[i % len(records)])
        f.write(b"</PubmedArticleSet>\n")
    return len(records)


def bare_iterparse(path: Path):
    with gzip.open(path, "rb") as f:
        for _, el in etree.iterparse(f, events=("end",), tag="PubmedArticle", resolve_entities=False,
                                     no_network=True, load_dtd=False):
            mc = el.find("MedlineCitation")
            art = mc.find("Article")
            title = "".join(art.find("ArticleTitle").itertext()) if art.find("ArticleTitle") is not None else ""
            abstract = " ".join("".join(a.itertext()) for a in art.iterfind("Abstract/AbstractText"))
            yield mc.findtext("PMID"), title, abstract
            el.clear()
            while el.getprevious() is not None:
                del el.getparent()[0]


def pubmed_parser_iter(path: Path):
    import pubmed_parser

    return pubmed_parser.parse_medline_xml(str(path))


def measure(parsers: dict[str, Callable[[Path], object]], path: Path, repeats: int,
            warmup: int) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, int]]:
    """(CPU seconds per round, wall seconds per round, records) of each parser.

    The machine is shared: wall time swings with other users' load, while this process's CPU
    time (`time.process_time`: parsing, gunzip, Python) barely does, so ratios use CPU time.
    """
    counts = dict.fromkeys(parsers, 0)
    wall: dict[str, list[float]] = {name: [] for name in parsers}

    def case(name: str, fn: Callable[[Path], object]) -> Callable[[], None]:
        def run() -> None:
            w0 = time.perf_counter()
            counts[name] = sum(1 for _ in fn(path))
            wall[name].append(time.perf_counter() - w0)
        return run

    cpu = interleaved({name: case(name, fn) for name, fn in parsers.items()}, repeats, warmup, clock="cpu")
    wall = {name: v[warmup:] for name, v in wall.items()}  # drop the warm-up rounds
    return cpu, wall, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=30_000)
    add_common_args(ap, repeats=5, warmup=1)
    args = ap.parse_args()
    with Bench("bench_parse", args) as b, tempfile.TemporaryDirectory(prefix="bench_parse_") as tmp:
        path = Path(tmp) / "pubmed_bench.xml.gz"
        distinct = build_file(path, args.records)
        print(f"{args.records} records ({distinct} distinct real ones), {path.stat().st_size / 1e6:.1f} MB gzipped")
        names = {"ours": "data_prep iter_pubmed", "ref": "pubmed_parser.parse_medline_xml",
                 "bare": "bare lxml iterparse (3 fields)"}
        cpu, wall, counts = measure({"ours": iter_pubmed, "ref": pubmed_parser_iter, "bare": bare_iterparse},
                                    path, args.repeats, args.warmup)
        assert counts["ours"] == counts["ref"] == args.records, counts
        print(f"{'':<32} {'records':>8} {'CPU s (median, range)':>24} {'rec/CPU-s':>10} {'wall s':>7} {'rec/s wall':>11}")
        for key, label in names.items():
            c, w, n = sorted(cpu[key]), sorted(wall[key]), counts[key]
            med_c, med_w = c[len(c) // 2], w[len(w) // 2]
            print(f"{label:<32} {n:>8} {med_c:8.2f} ({c[0]:.2f}-{c[-1]:.2f}) {n / med_c:10,.0f} {med_w:7.2f} "
                  f"{n / med_w:11,.0f}")
            b.record(key, {"records": n, "cpu_s": cpu[key], "wall_s": wall[key]})
        b.ratio("iter_pubmed / pubmed_parser, records per CPU-second", rate_ratios(cpu["ours"], cpu["ref"]), goal=3.0)
        b.ratio("iter_pubmed / pubmed_parser, records per wall-second", rate_ratios(wall["ours"], wall["ref"]))
        b.ratio("iter_pubmed / bare iterparse, records per CPU-second", rate_ratios(cpu["ours"], cpu["bare"]))


if __name__ == "__main__":
    main()
