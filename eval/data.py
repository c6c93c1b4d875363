"""Evaluation data in one command: `python -m eval.data fetch out_dir=<dir>`.

Downloads PubMedQA PQA-L and BioGPT's BC5CDR / DDI / KD-DTI / HoC files (plus BioGPT's BPE codes
and dictionaries) from their official public locations at pinned commits, checks each against a
pinned sha256, and lays them out as ../shared/data is laid out:

  <out_dir>/pubmedqa/{ori_pqal.json, test_ground_truth.json, pqal_test_set.json,
                      pqal_fold0_{train,dev}_set.json, pqal_{test,trainval}_pmids.txt}
  <out_dir>/biogpt/<TASK>/raw/..., biogpt/BC5CDR/CDR_Data/..., biogpt/BioGPT{,-Large}/...

The PubMedQA split files are not published upstream: they are what upstream's
`preprocess/split_dataset.py pqal` (seed 0) writes, rebuilt here and checked against pinned hashes.
Point every app at the folder with `export BIOGPT_EVAL_DATA=<out_dir>` (train/eval read it for
`task.bench_dir`, data_prep for `decontam.eval_dir`).

Downloads reuse data_prep's downloader (md5-verified `.part` files, resume, retries with backoff);
each file is then checked against its sha256 and moved into place, so a rerun skips what is done
and a failed file leaves nothing but its `.part` (or a `.bad-md5` quarantine) behind.
KD-DTI's `train.json` is not fetched: upstream's blob is too large for the public snapshot, so no
checksum can be pinned for it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_bytes
from data_prep.errors import PrepError
from data_prep.sources.download import DownloadJob, HttpConfig, download_all, marker_path

PUBMEDQA_URL = "https://raw.githubusercontent.com/pubmedqa/pubmedqa/1cbae8e92f72f20c8d3747cbb3bf5bc53554d997/data"
BIOGPT_URL = "https://raw.githubusercontent.com/microsoft/BioGPT/648f7d6503c038b44e70b7510bf431c7be94e891/data"
EVAL_ENV = "BIOGPT_EVAL_DATA"


@dataclass(frozen=True)
class Remote:
    """One upstream file: where it lies under its repository's data/ and where it goes under out_dir."""

    base: str  # "pubmedqa" | "biogpt" (which base URL)
    upstream: str
    dest: str
    md5: str
    sha256: str


# Pinned from the byte-identical copies in ../shared/data (see the PROVENANCE.md files there).
REMOTES: tuple[Remote, ...] = (
    Remote("pubmedqa", "ori_pqal.json", "pubmedqa/ori_pqal.json", "05b2b70949907e260d2aa82bc5d20c6f",
           "8b3276be8942ebbd77f3ddcda12c1749bf0e490045a736fd8438ee40cf37a41d"),
    Remote("pubmedqa", "test_ground_truth.json", "pubmedqa/test_ground_truth.json", "f52c9d953b2833b43486fb1c00f1737f",
           "939fe566f09017d13b1ca64d2ddfee0bc2374b366048152997669cccedc44d51"),
    Remote("biogpt", "BC5CDR/raw/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.PubTator.txt",
           "biogpt/BC5CDR/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.PubTator.txt", "96b142b3cc1774d7437c285a88b9694c",
           "a3c48d5f35bdfce20c2371778abedc9fd24d1da092207072e5181ad53c8d0e2f"),
    Remote("biogpt", "BC5CDR/raw/CDR_Data/README.txt", "biogpt/BC5CDR/CDR_Data/README.txt",
           "4c2d5c5ec2c3bc98f08cb44c80fa533d", "926992c39d681becfdf9ba907de8d9e5096d1b44eabc014d22ba8f8d387a491f"),
    Remote("biogpt", "BC5CDR/raw/test.entities.json", "biogpt/BC5CDR/raw/test.entities.json",
           "37168ed86bc5a905094556675747ad8b", "e0bc73cca7c45687251ac56310b420c33a49f72da120e85fd1720eb2e9c31c43"),
    Remote("biogpt", "BC5CDR/raw/test.json", "biogpt/BC5CDR/raw/test.json",
           "080754c6c5e8a7e6c2bc13710f709851", "9072c3a3dbf641e9f667c05a8b8b14c91cd7b71980c077e7e67b4b16429b825f"),
    Remote("biogpt", "BC5CDR/raw/train.entities.json", "biogpt/BC5CDR/raw/train.entities.json",
           "35eab4c47d83c60045dea913833cbf7c", "3526cc3286a425313faf6f04c1eb4dfbfe5b53a412cc72786f217c72981ea02b"),
    Remote("biogpt", "BC5CDR/raw/train.json", "biogpt/BC5CDR/raw/train.json",
           "865eec96b92257562ef354169006f6b6", "f0bf995e30faed6f4016e9868345bb9759b29c57622871c383dc9755edc9fa1c"),
    Remote("biogpt", "BC5CDR/raw/valid.entities.json", "biogpt/BC5CDR/raw/valid.entities.json",
           "b7dbd7b696682b48d94e20b08fc8bb5b", "79f744756471406822fa576acfce628b093f4a6b6f6f3c2951d5d87db49662fd"),
    Remote("biogpt", "BC5CDR/raw/valid.json", "biogpt/BC5CDR/raw/valid.json",
           "fb09cf1d130f841c6850da6a6b3697a5", "cf299b8a72780d5f5e450d65c0f2c977da20a7458b5d71a795466a35172f515d"),
    Remote("biogpt", "DDI/raw/test.json", "biogpt/DDI/raw/test.json",
           "4fb3a3236f5d636ee2646c2a08d7b5e2", "9b1de1f31ca9b881da02054e1a9609b96598754d4a7201ebde1c95a49661ff5d"),
    Remote("biogpt", "DDI/raw/train.json", "biogpt/DDI/raw/train.json",
           "fb556544640a85a77a1a20d429cf0d06", "6382659ce86fa7da174d8ce7ac8ff90e8f58851cc9e6316894dbee8dde895af3"),
    Remote("biogpt", "DDI/raw/valid.json", "biogpt/DDI/raw/valid.json",
           "b61f86d22438b657f88249ebe7619fa2", "c5ec007d1625bb5b573c111694d65c2c32c4fbe989ebcad0e4562c71e545ec57"),
    Remote("biogpt", "KD-DTI/raw/test.json", "biogpt/KD-DTI/raw/test.json",
           "726accd4ca4de2a31655936cab351ac2", "72d559ec91eb24b102e9a3404c5c415fefdf8dbbc0f9415336a5d642679c1ee4"),
    Remote("biogpt", "KD-DTI/raw/valid.json", "biogpt/KD-DTI/raw/valid.json",
           "537c3df5b5ca844da1408928ab3550dd", "fa3ad78fb3b6faecb040489606cfcd234c8da31b46852e48f564d1e0810be56c"),
    Remote("biogpt", "HoC/raw/test.tsv", "biogpt/HoC/raw/test.tsv",
           "9388fd73615c932eb94f0786a4bb8359", "5fcaf4a2582f6bfb1d3b3720a855ce8e776f70a91f9f3308124b5c9a02dd9e4e"),
    Remote("biogpt", "BioGPT/bpecodes", "biogpt/BioGPT/bpecodes",
           "9e8a300ee3669f399a15fbfe9415f38d", "9dcbaa97d51e28e26cd82bc4b038affcb29fecf259f5bacf3f3775012d6cf174"),
    Remote("biogpt", "BioGPT/dict.txt", "biogpt/BioGPT/dict.txt",
           "e8c6184677300d5cd094f52499f04eb6", "1719be3b72a5af941702d1b393c1a551e839cca233d7e2c2d16485dc3ce46e8a"),
    Remote("biogpt", "BioGPT-Large/bpecodes", "biogpt/BioGPT-Large/bpecodes",
           "65ab22cd742d85749026dcf2a115321f", "fa6590c1e18131f84ad33159d0e3a7995416592bebebddae93942639c9b8863c"),
    Remote("biogpt", "BioGPT-Large/dict.txt", "biogpt/BioGPT-Large/dict.txt",
           "5e9ae4f1869002154f42a8776ff9d4ed", "42aeae466f4b991c342daa47d5e1a9dfce27d4ad366442a93364f65314344b92"),
)

# The PubMedQA splits rebuilt from ori_pqal.json (file -> sha256 of what upstream's script writes).
DERIVED_SHA256 = {
    "pubmedqa/pqal_test_set.json": "f420f49d97516329d81f62d7d454055e3a063dbd0913ebaff915993bb321cbab",
    "pubmedqa/pqal_fold0_train_set.json": "7e539dceebfe5d9fbfc8fa1313713436a1e10f6d6f5bad1ed3fd39d1442be265",
    "pubmedqa/pqal_fold0_dev_set.json": "9d8982fa88a2a7f68230c2757e7eb5b495577a61cdca9e03c3ab308bc725d9f5",
    "pubmedqa/pqal_test_pmids.txt": "ab8c63296777baf4541400daa675b12346745cc306ccaa43336dae7bbb9aa6e4",
    "pubmedqa/pqal_trainval_pmids.txt": "fbf11a22fe5147d0c62e9be7a1a4534cea7f9dbd6908d216343db5451b0b36b6",
}


class FetchError(Exception):
    """One line naming the URL or file and what to do."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _done(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_of(path) == sha256


# ---- PubMedQA splits -------------------------------------------------------------------------


def _label_parts(pmids: list[str], k: int, rng: random.Random) -> list[list[str]]:
    """Shuffle one label's PMIDs and cut them into k runs of ceil(n/k) (the last takes the rest)."""
    rng.shuffle(pmids)
    n = math.ceil(len(pmids) / k)
    return [pmids[i * n:] if i == k - 1 else pmids[i * n:(i + 1) * n] for i in range(k)]


def _stratified(items: dict, k: int, rng: random.Random) -> list[dict]:
    """k label-stratified parts in upstream's order (yes, no, maybe); when the last part comes out
    smaller, each other part gives it one random item. The random stream must match upstream's
    call for call, or the splits (and their pinned hashes) change."""
    by_label: dict[str, list[str]] = {"yes": [], "no": [], "maybe": []}
    for pmid, item in items.items():
        by_label[item["final_decision"]].append(pmid)
    cut = {label: _label_parts(p, k, rng) for label, p in by_label.items()}
    parts = [{p: items[p] for label in cut for p in cut[label][i]} for i in range(k)]
    if len(parts[-1]) != len(parts[0]):
        for i in range(k - 1):
            moved = rng.choice(list(parts[i]))
            parts[-1][moved] = parts[i].pop(moved)
    return parts


def pubmedqa_splits(ori_pqal: dict) -> dict[str, bytes]:
    """The PQA-L split files (relative path -> bytes): 500 test items, fold 0's 450 train / 50 dev."""
    rng = random.Random(0)
    cv, test = _stratified(ori_pqal, 2, rng)
    folds = _stratified(cv, 10, rng)
    train0 = {p: item for fold in folds[1:] for p, item in fold.items()}

    def ids(d: dict) -> bytes:
        return "".join(f"{p}\n" for p in sorted(d, key=int)).encode()

    return {
        "pubmedqa/pqal_test_set.json": json.dumps(test, indent=4).encode(),
        "pubmedqa/pqal_fold0_train_set.json": json.dumps(train0, indent=4).encode(),
        "pubmedqa/pqal_fold0_dev_set.json": json.dumps(folds[0], indent=4).encode(),
        "pubmedqa/pqal_test_pmids.txt": ids(test),
        "pubmedqa/pqal_trainval_pmids.txt": ids(cv),
    }


# ---- fetch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchConfig:
    out_dir: str | None = None  # null: $BIOGPT_EVAL_DATA
    pubmedqa_url: str = PUBMEDQA_URL
    biogpt_url: str = BIOGPT_URL
    connections: int = 3
    retries: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    progress: bool = True


def fetch(cfg: FetchConfig) -> Path:
    """Download, verify and lay out every file under the output folder; returns that folder.
    Raises FetchError (one line per failed file) after the other files have completed."""
    out_raw = cfg.out_dir or os.environ.get(EVAL_ENV)
    if not out_raw:
        raise FetchError(f"out_dir is required: pass out_dir=<folder> (or set ${EVAL_ENV})")
    out = Path(out_raw).expanduser().resolve()
    bases = {"pubmedqa": cfg.pubmedqa_url.rstrip("/"), "biogpt": cfg.biogpt_url.rstrip("/")}
    todo = [r for r in REMOTES if not _done(out / r.dest, r.sha256)]
    http = HttpConfig(connections=cfg.connections, retries=cfg.retries, backoff_s=cfg.backoff_s,
                      timeout_s=cfg.timeout_s, progress=cfg.progress)
    jobs = [DownloadJob(url=f"{bases[r.base]}/{r.upstream}", dest=out / r.dest, md5=r.md5) for r in todo]
    if jobs:
        _say(cfg, f"eval.data: fetching {len(jobs)} of {len(REMOTES)} files into {out}")
    errors: list[str] = []
    results = download_all(jobs, http, desc="eval data") if jobs else []
    for r, job, res in zip(todo, jobs, results, strict=True):
        marker_path(job.dest).unlink(missing_ok=True)  # the sha256 is the record here; keep the layout clean
        if res.error is not None:
            errors.append(f"{job.url} -> {job.dest}: {getattr(res.error, 'reason', res.error)}")
            continue
        got = sha256_of(job.dest)
        if got != r.sha256:
            bad = job.dest.with_name(job.dest.name + ".bad-sha256")
            os.replace(job.dest, bad)
            errors.append(f"{job.url} -> {job.dest}: sha256 {got} is not the pinned {r.sha256}; "
                          f"quarantined as {bad.name}, delete it and rerun")
    if errors:
        raise FetchError("; ".join(errors))
    _write_splits(out, cfg)
    _say(cfg, f"eval.data: {out} is complete; use it with: export {EVAL_ENV}={out}")
    return out


def _write_splits(out: Path, cfg: FetchConfig) -> None:
    if all(_done(out / rel, sha) for rel, sha in DERIVED_SHA256.items()):
        return
    src = out / "pubmedqa" / "ori_pqal.json"
    for rel, data in pubmedqa_splits(json.loads(src.read_bytes())).items():
        got = hashlib.sha256(data).hexdigest()
        if got != DERIVED_SHA256[rel]:  # e.g. a Python whose `random` differs from CPython 3's
            raise FetchError(f"{out / rel}: rebuilt split has sha256 {got}, not the pinned {DERIVED_SHA256[rel]}; "
                             "this Python does not reproduce upstream's split, report it")
        atomic_write_bytes(out / rel, data)
    _say(cfg, "eval.data: wrote the PubMedQA PQA-L splits (500 test, fold-0 450 train / 50 dev)")


def _say(cfg: FetchConfig, line: str) -> None:
    if cfg.progress:
        print(line, file=sys.stderr, flush=True)


# ---- command line ----------------------------------------------------------------------------

USAGE = ("usage: python -m eval.data fetch out_dir=<folder> [pubmedqa_url=...] [biogpt_url=...] "
         "[connections=3] [retries=5] [backoff_s=1.0] [timeout_s=60] [progress=true]")


def parse_args(argv: list[str]) -> FetchConfig:
    """`fetch key=value ...` (the same key=value style as the Hydra apps) -> FetchConfig."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise SystemExit(USAGE)
    if argv[0] != "fetch":
        raise FetchError(f"unknown command {argv[0]!r}; {USAGE}")
    fields = FetchConfig.__dataclass_fields__
    values: dict = {}
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if not sep or key not in fields:
            raise FetchError(f"unknown argument {arg!r}; keys: {', '.join(fields)}")
        kind = fields[key].type
        try:
            if "bool" in kind:
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                values[key] = value.lower() == "true"
            elif "int" in kind:
                values[key] = int(value)
            elif "float" in kind:
                values[key] = float(value)
            else:
                values[key] = value
        except ValueError:
            raise FetchError(f"{key}={value!r} is not a valid {kind}") from None
    return FetchConfig(**values)


def main(argv: list[str] | None = None) -> int:
    try:
        fetch(parse_args(sys.argv[1:] if argv is None else argv))
    except (FetchError, PrepError, OSError) as e:
        print(f"eval.data: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
