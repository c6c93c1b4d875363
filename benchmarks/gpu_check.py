"""The GPU check: everything the project claims about GPUs, measured in one run of a few minutes.

    bash benchmarks/gpu_check.sh --out runs/gpu_check             # one H100/H200: ~8 minutes
    bash benchmarks/gpu_check.sh --dry-run --out /tmp/gpu_check   # CPU, tiny preset: the same code path
    .venv/bin/python benchmarks/gpu_check.py --out DIR --only fit.biogpt_large.zero3   # one section again

Writes DIR/gpu_check.json and DIR/gpu_check.md (after every section, so an interrupted run still
leaves both), and DIR/logs/<section>.log. Every section runs in its own subprocess with its own time
budget; a section that fails, crashes or runs out of time is recorded as such and the next one runs.
Sections, in the order they run (later ones are skipped, and say so, when the total budget is spent):

  env                 torch / CUDA / device / flash-attn / DeepSpeed versions, the device's bf16 peak
  data                synthetic token shards + byte-level BPE tokenizers of the presets' vocabulary sizes
  tput.eager.*        `biogpt` bf16 T=2048: tokens/s and MFU per attention backend (sdpa, flex, flash, blocked)
  tput.compiled.*     the same with `block.compile()` (as trainer.compile=true does)
  fit.biogpt.search   RTX 4090 claim: largest micro-batch of `experiment=biogpt_4090` (bf16, AdamW) under a
                      24 GiB cap (torch.cuda.set_per_process_memory_fraction)
  fit.biogpt.train    `python -m train experiment=biogpt_4090` with that micro-batch under the cap, a few steps
  strategy.zero2      `python -m train experiment=biogpt_4090 strategy=deepspeed_zero2`, a few steps
  strategy.fsdp       `python -m train experiment=biogpt_4090 strategy=fsdp`, a few steps
  resume              bf16 exact resume: an interrupted + resumed run against an uninterrupted one
  pytest.gpu          the tests marked @pytest.mark.gpu
  fit.biogpt_large.zero3  `python -m train experiment=biogpt_large_4090` (ZeRO-3 offload) under the cap

Training sections run the real entry point (`python -m train` via runpy, in a child that first caps
GPU memory when asked) with overrides that keep them to a few steps. --dry-run runs every section on
the CPU with the `tiny` preset; FSDP and DeepSpeed need CUDA in Lightning, so there they are only
composed and validated.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import runpy
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

STATUSES = ("ok", "failed", "error", "timeout", "skipped")
GIB = 2**30
CAP_GIB = 24.0  # an RTX 4090's memory
DEFAULT_BUDGET_S = 470  # whole run; leaves room under 8 minutes for start-up and the reports
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


# =====================================================================================================
# plan
# =====================================================================================================

@dataclass
class Section:
    name: str
    kind: str  # a key of CHILDREN
    params: dict[str, Any]
    budget_s: float
    title: str
    # Turns earlier results into this section's params (e.g. the micro-batch found by the search).
    prepare: Callable[[dict[str, Any], dict[str, dict]], dict[str, Any]] | None = None
    # A command of its own instead of `--child kind`; it writes its result JSON to $GPU_CHECK_RESULT.
    argv: list[str] | None = None


@dataclass
class Settings:
    dry_run: bool
    out: Path
    preset: str = "biogpt"
    seq_len: int = 2048
    batch: int = 8
    steps: int = 10
    warmup: int = 3
    train_steps: int = 4
    candidates: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
    datasets: dict[str, str] = field(default_factory=dict)  # section data name -> preset whose vocab it has

    @classmethod
    def make(cls, dry_run: bool, out: Path) -> Settings:
        if dry_run:
            return cls(True, out, preset="tiny", seq_len=256, batch=2, steps=3, warmup=1, train_steps=3,
                       candidates=(1, 2, 4), datasets={"tiny": "tiny"})
        return cls(False, out, datasets={"biogpt": "biogpt", "biogpt_large": "biogpt_large", "tiny": "tiny"})

    def data_dir(self, name: str) -> Path:
        return self.out / "work" / "data" / (name if name in self.datasets else "tiny")

    def run_dir(self, section: str) -> Path:
        return self.out / "work" / "runs" / section


def train_overrides(s: Settings, section: str, data: str, steps: int, extra: list[str],
                    shrink: bool = True) -> list[str]:
    """A few optimizer steps, no validation, no top-k checkpoints, CSV metrics, no accumulation; on a
    dry run (and `shrink`) the tiny model on the CPU."""
    base = [f"run_dir={s.run_dir(section)}", f"task.data_dir={s.data_dir(data)}", "task.vocab_size_from_tokenizer=true",
            "logger=csv", f"trainer.max_steps={steps}", "trainer.accumulate_grad_batches=1",
            "trainer.val_check_interval=1000000", "trainer.checkpoint_every_n_steps=1000000",
            "trainer.save_top_k=0", "trainer.progress_bar=false", "optim.warmup_steps=1"]
    if s.dry_run and shrink:  # the same experiment, shrunk onto the CPU
        base += ["model=tiny", "trainer=cpu", "task.seq_len=64", "data.num_workers=0", "data.pin_memory=false",
                 "optim.fused=false", "trainer.compile=false"]
    return base + extra


def plan(s: Settings) -> list[Section]:
    secs = [Section("env", "env", {}, 60, "environment"),
            Section("data", "data", {"datasets": {n: {"dir": str(s.data_dir(n)), "preset": p}
                                                  for n, p in s.datasets.items()}}, 120, "synthetic shards")]

    def tput(backend: str, compiled: bool) -> Section:
        mode = "compiled" if compiled else "eager"
        return Section(f"tput.{mode}.{backend}", "throughput",
                       {"preset": s.preset, "seq_len": s.seq_len, "batch": s.batch, "steps": s.steps,
                        "warmup": s.warmup, "backend": backend, "compile": compiled},
                       90 if not compiled else 150, f"{s.preset} T={s.seq_len} {backend} {mode}")

    backends = ("sdpa", "flex", "flash", "blocked")
    secs += [tput(b, False) for b in backends]
    # Dry run: CPU compilation takes ~20 s a case, so one compiled case stands for the rest.
    compiled_first = ("sdpa",) if s.dry_run else ("flex", "flash")
    secs += [tput(b, True) for b in compiled_first]

    cap = None if s.dry_run else CAP_GIB
    secs.append(Section("fit.biogpt.search", "fit_search",
                        {"experiment": "biogpt_4090", "cap_gib": cap, "candidates": list(s.candidates), "steps": 3,
                         "overrides": ["model=tiny", "task.seq_len=64", "optim.fused=false"] if s.dry_run else []},
                        120, "largest micro-batch under 24 GiB"))

    def fit_train(params: dict, results: dict[str, dict]) -> dict:
        found = results.get("fit.biogpt.search", {}).get("largest_ok")
        extra = [f"data.batch_size={found}"] if found else []
        return {**params, "overrides": params["overrides"] + extra, "batch_from_search": found}

    secs.append(Section("fit.biogpt.train", "train",
                        {"overrides": train_overrides(s, "fit.biogpt.train", "biogpt", s.train_steps,
                                                      ["experiment=biogpt_4090"]), "cap_gib": cap},
                        150, "python -m train experiment=biogpt_4090 under 24 GiB", prepare=fit_train))
    for name, strategy in (("strategy.zero2", "deepspeed_zero2"), ("strategy.fsdp", "fsdp")):
        # compile off: this section checks the strategy; compilation is measured above.
        ov = train_overrides(s, name, "biogpt", s.train_steps,
                             ["experiment=biogpt_4090", f"strategy={strategy}", "trainer.compile=false"])
        secs.append(Section(name, "compose" if s.dry_run else "train", {"overrides": ov, "cap_gib": None},
                            150, f"python -m train strategy={strategy}, one GPU"))
    secs.append(Section("resume", "resume", {"settings_out": str(s.out), "dry_run": s.dry_run, "steps": 8,
                                             "stop_at": 4}, 150, "exact resume, bf16"))
    secs.append(Section("pytest.gpu", "pytest", {"dry_run": s.dry_run,
                                                 "junit": str(s.out / "work" / "sections" / "pytest_gpu.xml")},
                        150, "tests marked gpu"))
    large = train_overrides(s, "fit.biogpt_large.zero3", "biogpt_large", 3, ["experiment=biogpt_large_4090"])
    secs.append(Section("fit.biogpt_large.zero3", "compose" if s.dry_run else "train",
                        {"overrides": large, "cap_gib": cap}, 240, "biogpt_large ZeRO-3 offload under 24 GiB"))
    if not s.dry_run:
        secs += [tput(b, True) for b in ("sdpa", "blocked")]
    else:
        secs += [Section(f"tput.compiled.{b}", "skip", {"reason": "dry run: one compiled case (sdpa) only"}, 1,
                         f"{s.preset} T={s.seq_len} {b} compiled") for b in ("flex", "flash", "blocked")]
    return secs


# =====================================================================================================
# driver
# =====================================================================================================

def _tail(path: Path, n: int = 2500) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the section's process group (a training child then saves and stops), SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_child(argv: list[str], log: Path, result_file: Path, timeout: float,
              env: dict[str, str] | None = None, new_session: bool = True) -> dict[str, Any]:
    """Run one section's command, in its own process group unless `new_session` is False (a step
    of a section stays in the section's group, so killing the section kills it too); return its
    result (never raises)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result_file.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with open(log, "wb") as f:
        try:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=new_session,
                                    env={**os.environ, **(env or {}), "GPU_CHECK_RESULT": str(result_file)})
        except OSError as e:
            return {"status": "error", "error": f"could not start {argv[0]}: {e}", "seconds": 0.0}
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            _kill_group(proc) if new_session else _kill(proc)
            return {"status": "timeout", "error": f"still running after its {timeout:.0f} s budget; killed",
                    "seconds": time.perf_counter() - t0, "log_tail": _tail(log)}
    seconds = time.perf_counter() - t0
    result: dict[str, Any] = {}
    if result_file.is_file():
        try:
            result = json.loads(result_file.read_text())
        except ValueError as e:
            result = {"status": "error", "error": f"unreadable result file {result_file}: {e}"}
    if not result:
        result = {"status": "error", "error": f"exited with code {rc} without a result"}
    if result.get("status") not in STATUSES:
        result = {**result, "status": "error", "error": f"unknown status {result.get('status')!r}"}
    if result["status"] in ("error", "failed", "timeout"):
        result.setdefault("log_tail", _tail(log))
    result.update(seconds=seconds, returncode=rc)
    return result


def run_plan(sections: list[Section], out: Path, budget_s: float, meta: dict[str, Any]) -> dict[str, dict]:
    """Run the sections in order within the total budget; write the reports after each one."""
    results: dict[str, dict] = {}
    start = time.monotonic()
    reserve = 5.0  # for the reports at the end
    try:
        for sec in sections:
            left = budget_s - (time.monotonic() - start) - reserve
            if sec.kind == "skip":
                results[sec.name] = {"status": "skipped", "reason": sec.params["reason"], "seconds": 0.0}
            elif left < min(30.0, sec.budget_s):
                results[sec.name] = {"status": "skipped", "seconds": 0.0,
                                     "reason": f"out of time: {left:.0f} s of the {budget_s:.0f} s budget left; "
                                               f"run it alone with --only {sec.name}"}
            else:
                params = sec.prepare(sec.params, results) if sec.prepare else sec.params
                work = out / "work" / "sections"
                work.mkdir(parents=True, exist_ok=True)
                pfile, rfile = work / f"{sec.name}.params.json", work / f"{sec.name}.result.json"
                pfile.write_text(json.dumps(params, indent=2))
                argv = sec.argv or [sys.executable, str(Path(__file__).resolve()), "--child", sec.kind, "--params",
                                    str(pfile), "--result", str(rfile)]
                print(f"[gpu_check] {sec.name}: {sec.title} (budget {min(sec.budget_s, left):.0f} s)", flush=True)
                results[sec.name] = run_child(argv, out / "logs" / f"{sec.name}.log", rfile,
                                              min(sec.budget_s, left), env={"WANDB_MODE": "disabled"})
            r = results[sec.name]
            r["title"] = sec.title
            print(f"[gpu_check] {sec.name}: {r['status']} ({r.get('seconds', 0):.0f} s)"
                  + (f" - {r.get('error') or r.get('reason')}" if r["status"] != "ok" else ""), flush=True)
            write_reports(out, results, {**meta, "elapsed_s": time.monotonic() - start})
    finally:
        for sec in sections:  # a driver interrupted mid-way still lists every section
            results.setdefault(sec.name, {"status": "skipped", "reason": "the check was interrupted",
                                          "title": sec.title, "seconds": 0.0})
        write_reports(out, results, {**meta, "elapsed_s": time.monotonic() - start})
    return results


# =====================================================================================================
# reports
# =====================================================================================================

def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(out: Path, results: dict[str, dict], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    counts = {s: sum(1 for r in results.values() if r.get("status") == s) for s in STATUSES}
    doc = {"format_version": 1, **meta, "counts": counts, "sections": results}
    _atomic_text(out / "gpu_check.json", json.dumps(doc, indent=2, default=str) + "\n")
    _atomic_text(out / "gpu_check.md", render_md(doc))


def _f(x: Any, fmt: str = "{:,.0f}", none: str = "-") -> str:
    return none if x is None else fmt.format(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _why(r: dict) -> str:
    """The first line of the error or skip reason, fit for a table cell."""
    text = (r.get("error") or r.get("reason") or "").strip()
    return text.splitlines()[0][:200].replace("|", "/") if text else ""


def render_md(doc: dict[str, Any]) -> str:
    sec = doc["sections"]
    env = sec.get("env", {})
    lines = [f"# GPU check{' (dry run on CPU, tiny preset)' if doc.get('dry_run') else ''}", "",
             f"- started {doc.get('started')}, {doc.get('elapsed_s', 0):.0f} s of the {doc.get('budget_s', 0):.0f} s "
             f"budget; command `{doc.get('command')}`",
             f"- device: {env.get('device', '?')}; dense bf16 peak "
             f"{_f(env.get('peak_flops') and env['peak_flops'] / 1e12, '{:.0f} TFLOPS', 'unknown')}; "
             f"torch {env.get('torch', '?')}, CUDA {env.get('cuda', '-')}, flash-attn {env.get('flash_attn') or 'not installed'}, "
             f"DeepSpeed {env.get('deepspeed') or 'not installed'}, Lightning {env.get('lightning', '?')}",
             "- sections: " + ", ".join(f"{n} {k}" for k, n in doc["counts"].items() if n), ""]

    tput = {k: v for k, v in sec.items() if k.startswith("tput.")}
    if tput:
        lines += ["## Throughput and MFU", "",
                  "| backend | compile | status | tokens/s (median, step range) | MFU | MFU w/o head | s/step | peak GiB | kernels (local/global) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, r in tput.items():
            _, mode, backend = name.split(".", 2)
            if r.get("status") == "ok":
                rng = r.get("tokens_per_s_range") or [None, None]
                kern = r.get("resolved_backends", {})
                lines.append(f"| {backend} | {mode} | ok | {_f(r.get('tokens_per_s'))} ({_f(rng[0])}-{_f(rng[1])}) | "
                             f"{_pct(r.get('mfu'))} | {_pct(r.get('mfu_no_head'))} | "
                             f"{_f(r.get('step_s') and sorted(r['step_s'])[len(r['step_s']) // 2], '{:.3f}')} | "
                             f"{_f(r.get('peak_mem_gib'), '{:.1f}')} | {kern.get('local', '-')}/{kern.get('global', '-')} |")
            else:
                lines.append(f"| {backend} | {mode} | {r.get('status')} | {_why(r)} | | | | | |")
        lines.append("")

    lines += ["## Memory (RTX 4090 claim), strategies, resume, tests", "",
              "| section | status | seconds | result |", "|---|---|---|---|"]
    for name, r in sec.items():
        if name.startswith("tput.") or name in ("env",):
            continue
        lines.append(f"| {name} | {r.get('status')} | {r.get('seconds', 0):.0f} | {_summary(name, r)} |")
    lines.append("")
    bad = {k: v for k, v in sec.items() if v.get("status") in ("error", "failed", "timeout")}
    if bad:
        lines += ["## Failures (log tails; full logs in logs/<section>.log)", ""]
        for name, r in bad.items():
            lines += [f"### {name}: {r.get('status')}", "", "```", (r.get("error") or "").strip(),
                      (r.get("log_tail") or "").strip()[-1500:], "```", ""]
    return "\n".join(lines) + "\n"


def _summary(name: str, r: dict) -> str:
    if r.get("status") not in ("ok", "failed"):
        return _why(r)
    if name == "data":
        return ", ".join(f"{k}: vocab {v['vocab_size']:,}, {v['train_tokens']:,} tokens" for k, v in r["datasets"].items())
    if name == "fit.biogpt.search":
        tries = "; ".join(f"B={t['batch']}: {t['outcome']}"
                          + (f" {t['peak_gib']:.1f} GiB" if t.get("peak_gib") is not None else "") for t in r["tries"])
        return f"largest micro-batch {r.get('largest_ok')} x {r.get('seq_len')} (cap {_f(r.get('cap_gib'), '{:.1f} GiB', 'none')}); {tries}"
    if name == "resume":
        return (f"{'match' if r.get('match') else 'MISMATCH'}: steps {r.get('compared_steps')}, largest difference "
                f"{_f(r.get('max_abs_diff'), '{:.2e}')} (tolerance {r.get('rtol')} relative); bit-exact {r.get('bit_exact')}")
    if name == "pytest.gpu":
        return f"{r.get('passed', 0)} passed, {r.get('failed', 0)} failed, {r.get('skipped', 0)} skipped ({', '.join(r.get('files', []))})"
    if r.get("composed_only"):
        return f"composed and validated only ({r.get('reason')})"
    if "losses" in r:  # a training run
        parts = [f"state {r.get('state')}", f"{len(r['losses'])} steps, loss {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}"]
        if r.get("tokens_per_s") is not None:
            parts.append(f"{r['tokens_per_s']:,.0f} tokens/s")
        if r.get("mfu") is not None:
            parts.append(f"MFU {_pct(r['mfu'])}")
        if r.get("peak_alloc_gib") is not None:
            parts.append(f"peak GPU {r['peak_alloc_gib']:.1f} GiB allocated / {r['peak_reserved_gib']:.1f} reserved")
        if r.get("cap_gib") is not None:
            parts.append(f"cap {r['cap_gib']:.1f} GiB")
        if r.get("batch") is not None:
            parts.append(f"micro-batch {r['batch']}")
        parts.append(f"host peak RSS {r.get('host_peak_rss_gib', 0):.1f} GiB")
        return "; ".join(parts)
    return _why(r)


# =====================================================================================================
# children (each runs in its own process: `gpu_check.py --child KIND --params P --result R`)
# =====================================================================================================

def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def apply_cap(cap_gib: float | None) -> dict[str, Any]:
    """Limit this process's CUDA caching allocator so that allocator + what CUDA itself holds (context,
    cuBLAS workspaces: measured here, ~0.5 GiB) stays within cap_gib, as on a card of that size."""
    if cap_gib is None or not _cuda():
        return {"cap_gib": None}
    import torch

    torch.cuda.init()
    torch.empty(1, device="cuda")  # create the context so its size can be measured
    free, total = torch.cuda.mem_get_info()
    outside = total - free - torch.cuda.memory_reserved()
    allocator = cap_gib * GIB - outside
    torch.cuda.set_per_process_memory_fraction(max(0.01, allocator / total))
    return {"cap_gib": cap_gib, "cuda_overhead_gib": outside / GIB, "allocator_cap_gib": allocator / GIB}


def child_env(p: dict) -> dict:
    import lightning
    import torch

    from model.attention_backends import flash_available
    from model.flops import peak_bf16_flops

    r: dict[str, Any] = {"status": "ok", "torch": torch.__version__, "cuda": torch.version.cuda,
                         "python": platform.python_version(), "lightning": lightning.__version__,
                         "cpu_count": os.cpu_count(), "cuda_available": torch.cuda.is_available()}
    try:
        import psutil

        r["host_mem_gib"] = psutil.virtual_memory().total / GIB
    except ImportError:
        pass
    try:
        import deepspeed

        r["deepspeed"] = deepspeed.__version__
    except Exception as e:  # noqa: BLE001 - a broken DeepSpeed install is a finding, not a crash
        r["deepspeed"] = None
        r["deepspeed_error"] = f"{type(e).__name__}: {e}"[:300]
    if flash_available():
        import flash_attn

        r["flash_attn"] = flash_attn.__version__
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        r.update(device=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                 device_mem_gib=props.total_memory / GIB, device_count=torch.cuda.device_count(),
                 peak_flops=peak_bf16_flops(torch.cuda.get_device_name(0)))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,power.limit,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            r["nvidia_smi"] = smi.stdout.strip()
    else:
        r.update(device=f"CPU ({platform.processor() or platform.machine()})", peak_flops=None)
    return r


def synthetic_tokenizer(vocab_size: int, seed: int = 0):
    """A byte-level BPE with exactly `vocab_size` entries (ids 0-3 the project's specials): 256
    byte symbols plus merges that build lower-case words of 2-12 characters, a third of them
    word-initial, so the hybrid embedding sees a vocabulary shaped like a real one."""
    import random

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    rng = random.Random(seed)
    vocab: dict[str, int] = {t: i for i, t in enumerate(SPECIALS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    space = "\u0120"  # byte-level BPE's symbol for the space byte (in the alphabet above)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    merges: list[tuple[str, str]] = [(space, c) for c in letters]  # " a" ... " z"
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tokens = letters + [space + c for c in letters]  # what a merge may extend
    continuations = list(letters)  # what may be appended (never word-initial)
    while len(vocab) < vocab_size:
        a = rng.choice(tokens)
        b = rng.choice(letters) if rng.random() < 0.7 else rng.choice(continuations)
        new = a + b
        if new in vocab or len(new.lstrip(space)) > 12:
            continue
        merges.append((a, b))
        vocab[new] = len(vocab)
        tokens.append(new)
        if not new.startswith(space):
            continuations.append(new)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIALS))
    if tok.get_vocab_size() != vocab_size or [tok.token_to_id(t) for t in SPECIALS] != [0, 1, 2, 3]:
        raise RuntimeError(f"synthetic tokenizer: built {tok.get_vocab_size()} entries, wanted {vocab_size}")
    return tok


def write_token_dir(out: Path, vocab_size: int, train_tokens: int, val_tokens: int, seed: int = 0) -> dict:
    """A data_prep-layout folder (docs/architecture.md: manifest.json, tokenizer/, shards/) of
    Zipf-distributed ids in documents of 50-800 tokens, EOS after each."""
    import hashlib

    import numpy as np

    tok = synthetic_tokenizer(vocab_size, seed)
    (out / "tokenizer").mkdir(parents=True, exist_ok=True)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    tok_json = tok.to_str(pretty=True).encode()
    (out / "tokenizer" / "tokenizer.json").write_bytes(tok_json)
    dtype = np.dtype("<u2") if vocab_size < 65536 else np.dtype("<u4")
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", train_tokens), ("val", val_tokens)):
        ids = (3 + np.minimum(rng.zipf(1.2, n), vocab_size - 4)).astype(dtype)  # ids 4 .. V-1
        lengths = rng.integers(50, 800, size=n // 50 + 1)
        ends = np.cumsum(lengths)
        ends = ends[ends < n]
        ids[ends - 1] = 2  # EOS closes each document
        ends = np.append(ends, n).astype("<u8")
        ids[-1] = 2
        bin_bytes, idx_bytes = ids.tobytes(), ends.tobytes()
        (out / "shards" / f"{split}-00000.bin").write_bytes(bin_bytes)
        (out / "shards" / f"{split}-00000.idx").write_bytes(idx_bytes)
        shard = {"bin": f"shards/{split}-00000.bin", "idx": f"shards/{split}-00000.idx", "tokens": int(n),
                 "documents": int(ends.size), "sha256": hashlib.sha256(bin_bytes).hexdigest(),
                 "idx_sha256": hashlib.sha256(idx_bytes).hexdigest()}
        splits[split] = {"tokens": int(n), "documents": int(ends.size), "shards": [shard]}
    manifest = {"format_version": 1, "config_hash": "gpu_check-synthetic",
                "tokenizer": {"path": "tokenizer/tokenizer.json", "sha256": hashlib.sha256(tok_json).hexdigest(),
                              "vocab_size": vocab_size, "eos_id": 2, "bos_id": 0, "pad_id": 1, "unk_id": 3},
                "dtype": "uint16" if dtype.itemsize == 2 else "uint32", "splits": splits}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"vocab_size": vocab_size, "train_tokens": train_tokens, "dir": str(out)}


def child_data(p: dict) -> dict:
    from model.config import presets

    made = {}
    for name, d in p["datasets"].items():
        made[name] = write_token_dir(Path(d["dir"]), presets[d["preset"]]["vocab_size"], 2_000_000, 100_000)
    return {"status": "ok", "datasets": made}


def child_throughput(p: dict) -> dict:
    import torch

    from model.attention_backends import flash_available

    if p["backend"] == "flash" and not flash_available():
        return {"status": "skipped", "reason": "flash-attn is not installed (pip install flash-attn)"}
    if p["backend"] in ("flash",) and not torch.cuda.is_available():
        return {"status": "skipped", "reason": "flash-attn needs a CUDA GPU"}
    from bench_gpu_mfu import measure

    r = measure(p["preset"], p["seq_len"], p["batch"], p["steps"], p["warmup"], p["backend"], p["compile"])
    return {"status": "ok", **r}


def train_config(overrides: list[str]):
    """`python -m train`'s composed and checked config (train.config.build_config) for these overrides."""
    from hydra import compose, initialize_config_dir

    from train.config import build_config  # importing it registers train's schema for Hydra

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return build_config(compose("train", overrides=overrides))


def child_fit_search(p: dict) -> dict:
    """Largest micro-batch of an experiment's model and sequence length that trains (bf16 autocast,
    fp32 master weights, AdamW, chunked loss, clipping: the math of train/module.py, eager) under
    the cap. Each candidate runs `steps` steps on a freshly built model; the first OOM ends the search."""
    import gc

    import torch

    from model import Decoder, chunked_cross_entropy

    cap = apply_cap(p.get("cap_gib"))
    tc = train_config([f"experiment={p['experiment']}", *p.get("overrides", [])])
    T = int(tc.task.seq_len)
    mc = tc.model_config()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fused = bool(tc.optim.fused) and dev.type == "cuda"
    tries, largest = [], None
    for B in p["candidates"]:
        model = opt = x = None
        try:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            model = Decoder(mc, seed=0).to(dev)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
            x = torch.randint(4, mc.vocab_size, (B, T + 1), device=dev)
            secs = []
            for _ in range(p["steps"]):
                t = time.perf_counter()
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    loss = chunked_cross_entropy(model(x[:, :-1], return_hidden=True), model.head_weight, x[:, 1:])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                secs.append(time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated() / GIB if dev.type == "cuda" else None
            tries.append({"batch": B, "outcome": "ok", "peak_gib": peak, "tokens_per_s": B * T / min(secs)})
            largest = B
        except torch.OutOfMemoryError:
            tries.append({"batch": B, "outcome": "OOM", "peak_gib": None})
            break
        finally:
            del model, opt, x
            gc.collect()
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    status = "ok" if largest else "failed"
    return {"status": status, "largest_ok": largest, "seq_len": T, "tries": tries, "experiment": p["experiment"], **cap,
        **({} if largest else {"error": "not even micro-batch 1 fits"})}


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    import csv
    import statistics

    rows = []
    with contextlib.suppress(OSError):
        with open(run_dir / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    out: dict[str, Any] = {"steps": [int(r["step"]) for r in rows], "losses": [float(r["loss"]) for r in rows]}
    tps = [float(r["tokens_per_s"]) for r in rows[1:]]  # step 1 includes compilation / allocation
    mfus = [float(r["mfu"]) for r in rows[1:] if r.get("mfu") not in (None, "", "nan")]
    out["tokens_per_s"] = statistics.median(tps) if tps else None
    out["mfu"] = statistics.median(mfus) if mfus else None
    with contextlib.suppress(OSError, ValueError):
        out["state"] = json.loads((run_dir / "status.json").read_text())["state"]
    return out


def _override(overrides: list[str], key: str) -> str | None:
    for o in reversed(overrides):
        if o.lstrip("+").split("=", 1)[0] == key:
            return o.split("=", 1)[1]
    return None


def child_train(p: dict) -> dict:
    """`python -m train <overrides>` in this process (runpy: the real entry point), after capping
    GPU memory when asked; then its metrics.csv, status.json and peak memory."""
    cap = apply_cap(p.get("cap_gib"))
    overrides = p["overrides"]
    run_dir = Path(_override(overrides, "run_dir"))
    argv, sys.argv = sys.argv, [str(ROOT / "train" / "__main__.py"), *overrides]
    rc, error = 0, None
    try:
        runpy.run_module("train", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # noqa: BLE001 - recorded as the section's error
        rc, error = 1, f"{type(e).__name__}: {e}"
        traceback.print_exc()
    finally:
        sys.argv = argv
    r: dict[str, Any] = {**cap, **_read_metrics(run_dir), "returncode": rc,
                         "host_peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    bs = _override(overrides, "data.batch_size")
    r["batch"] = int(bs) if bs else None
    if _cuda():
        import torch

        r.update(peak_alloc_gib=torch.cuda.max_memory_allocated() / GIB,
                 peak_reserved_gib=torch.cuda.max_memory_reserved() / GIB)
    want = int(_override(overrides, "trainer.max_steps") or 0)
    if rc != 0 or error:
        r.update(status="error", error=error or f"python -m train exited with code {rc}")
    elif r.get("state") != "completed" or len(r["losses"]) != want:
        r.update(status="failed", error=f"state {r.get('state')}, {len(r['losses'])} of {want} steps logged")
    else:
        r["status"] = "ok"
    return r


def child_compose(p: dict) -> dict:
    """Dry run of a section Lightning can only run on CUDA: compose its config and validate it."""
    tc = train_config(p["overrides"])
    tc.model_config()
    strategy = getattr(tc.strategy.name, "value", tc.strategy.name)
    return {"status": "ok", "composed_only": True, "strategy": strategy,
            "reason": "Lightning's FSDP and DeepSpeed strategies need CUDA"}


def child_resume(p: dict) -> dict:
    """Uninterrupted run vs the same run stopped by SIGTERM at `stop_at` and resumed; per-step losses
    must agree within bf16 tolerance (bit-exact is reported too). Dropout on, so RNG state matters."""
    s = Settings.make(p["dry_run"], Path(p["settings_out"]))
    extra = ["model=tiny", "trainer=cpu" if s.dry_run else "trainer=gpu", "trainer.compile=false", "task.seq_len=128",
             "data.batch_size=8", "data.num_workers=0", "++model.dropout=0.1", "strategy=auto"]
    def launch(label: str, section: str, more: list[str]) -> dict:
        ov = train_overrides(s, section, "tiny", p["steps"], extra + more, shrink=False)
        pfile = s.out / "work" / "sections" / f"{section}.{label}.params.json"
        rfile = pfile.with_name(f"{section}.{label}.result.json")
        pfile.write_text(json.dumps({"overrides": ov, "cap_gib": None}))
        return run_child([sys.executable, str(Path(__file__).resolve()), "--child", "train", "--params", str(pfile),
                          "--result", str(rfile)], s.out / "logs" / f"resume.{label}.log", rfile, 120,
                         new_session=False)

    # The reference and the run to interrupt are independent: side by side (start-up dominates).
    with ThreadPoolExecutor(2) as pool:
        ref_f = pool.submit(launch, "reference", "resume.reference", [])
        stop_f = pool.submit(launch, "stopped", "resume.cut", [f"debug.sigterm_at_step={p['stop_at']}"])
        runs = {"reference": ref_f.result(), "stopped": stop_f.result()}
    runs["resumed"] = launch("resumed", "resume.cut", [])
    ref, stopped, resumed = runs["reference"], runs["stopped"], runs["resumed"]
    if ref.get("status") != "ok" or resumed.get("status") != "ok" or stopped.get("state") != "preempted":
        return {"status": "error", "error": f"runs: reference {ref.get('status')}, stopped {stopped.get('state')}, "
                f"resumed {resumed.get('status')}: {ref.get('error') or stopped.get('error') or resumed.get('error')}"}
    a = dict(zip(ref["steps"], ref["losses"], strict=True))
    b = dict(zip(resumed["steps"], resumed["losses"], strict=True))
    rtol = 1e-2  # a few bf16 ulps (bf16 keeps 8 significant bits: 2^-8 = 0.0039)
    compared = sorted(set(a) & set(b))
    diffs = {k: abs(a[k] - b[k]) for k in compared}
    match = compared == list(range(1, p["steps"] + 1)) and all(diffs[k] <= rtol * abs(a[k]) for k in compared)
    return {"status": "ok" if match else "failed", "match": match, "compared_steps": len(compared),
            "stop_at": p["stop_at"], "max_abs_diff": max(diffs.values()) if diffs else None, "rtol": rtol,
            "bit_exact": all(v == 0 for v in diffs.values()), "reference_losses": ref["losses"],
            "resumed_losses": resumed["losses"], **({} if match else {"error": f"per-step |diff|: {diffs}"})}


def child_pytest(p: dict) -> dict:
    """`pytest -m gpu` over the test files that hold gpu-marked tests; counts from its JUnit XML."""
    import xml.etree.ElementTree as ET

    files = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").rglob("test_*.py")
                   if "mark.gpu" in f.read_text(encoding="utf-8", errors="replace"))
    if not files:
        return {"status": "failed", "error": "no test is marked @pytest.mark.gpu", "files": []}
    junit = Path(p["junit"])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:randomly", "-p",
                           "no:cacheprovider", f"--junitxml={junit}", *files], cwd=ROOT, text=True,
                          capture_output=True)
    print(proc.stdout[-5000:], proc.stderr[-3000:], sep="\n")
    try:
        suites = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as e:
        return {"status": "error", "error": f"pytest exited {proc.returncode}, no JUnit XML ({e})", "files": files}
    finally:
        junit.unlink(missing_ok=True)
    tot = {k: sum(int(s.get(k, 0)) for s in suites.iter("testsuite")) for k in ("tests", "failures", "errors", "skipped")}
    passed = tot["tests"] - tot["failures"] - tot["errors"] - tot["skipped"]
    r = {"files": files, "passed": passed, "failed": tot["failures"] + tot["errors"], "skipped": tot["skipped"],
         "returncode": proc.returncode}
    if r["failed"]:
        r.update(status="failed", error=f"{r['failed']} gpu test(s) failed")
    elif not p["dry_run"] and (r["skipped"] or not passed):
        r.update(status="failed", error=f"{r['skipped']} gpu test(s) skipped on a GPU machine")
    else:
        r["status"] = "ok"
    return r


CHILDREN: dict[str, Callable[[dict], dict]] = {
    "env": child_env, "data": child_data, "throughput": child_throughput, "fit_search": child_fit_search,
    "train": child_train, "compose": child_compose, "resume": child_resume, "pytest": child_pytest,
}


def child_main(kind: str, params_file: Path, result_file: Path) -> int:
    params = json.loads(params_file.read_text())
    try:
        result = CHILDREN[kind](params)
    except BaseException as e:  # noqa: BLE001 - every failure becomes the section's recorded result
        traceback.print_exc()
        oom = "OutOfMemoryError" in type(e).__name__
        result = {"status": "error", "error": f"{type(e).__name__}: {str(e).strip()[:1500]}", "oom": oom}
    _atomic_text(result_file, json.dumps(result, indent=2, default=str))
    return 0


# =====================================================================================================
# main
# =====================================================================================================

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="folder for gpu_check.json, gpu_check.md, logs/")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny preset: check the script itself")
    ap.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="total time for all sections")
    ap.add_argument("--only", default=None, help="comma-separated section names (env and data always run)")
    ap.add_argument("--keep-work", action="store_true", help="keep work/ (data, run dirs, checkpoints)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--params", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child_main(a.child, a.params, a.result)
    if a.out is None:
        ap.error("--out DIR is required")
    if not a.dry_run and not _cuda():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); use --dry-run to check the "
              "script on a CPU", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    s = Settings.make(a.dry_run, a.out.resolve())
    sections = plan(s)
    if a.only:
        wanted = set(a.only.split(","))
        unknown = wanted - {x.name for x in sections}
        if unknown:
            ap.error(f"--only: unknown section(s) {sorted(unknown)}; known: {[x.name for x in sections]}")
        sections = [x for x in sections if x.name in wanted | {"env", "data"}]
    meta = {"dry_run": a.dry_run, "budget_s": a.budget_s, "command": " ".join(["gpu_check.py", *(argv or sys.argv[1:])]),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node()}
    results = run_plan(sections, s.out, a.budget_s, meta)
    if not a.keep_work:
        import shutil

        shutil.rmtree(s.out / "work", ignore_errors=True)
    bad = [k for k, v in results.items() if v["status"] in ("error", "failed", "timeout")]
    print(f"[gpu_check] wrote {s.out / 'gpu_check.json'} and {s.out / 'gpu_check.md'}"
          + (f"; not ok: {', '.join(bad)}" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
