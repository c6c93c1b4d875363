"""What every benchmark shares: its common arguments, timing, the machine load during the run, and
ratios that say when they are not resolved.

A ratio is taken per repeat (the two sides measured in the same round, rounds interleaved), and
reported as the median with the min-max range of the per-repeat ratios. It is printed only when
that range is narrower than the effect it would claim (its distance from 1.0) and at least three
repeats were made; otherwise the line says "unresolved" and gives the numbers. Against a goal the
verdict is "met" or "missed" only when every repeat agrees.

    p = argparse.ArgumentParser(...); add_common_args(p)
    with Bench("bench_x", args) as b:
        t = interleaved({"ours": f, "ref": g}, args.repeats, args.warmup)
        b.ratio("ours / ref, records/s", rate_ratios(t["ours"], t["ref"]), goal=3.0)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIN_REPEATS = 3


def add_common_args(p: argparse.ArgumentParser, repeats: int | None = 5, warmup: int = 1) -> None:
    """--repeats (unless None: a benchmark without repeated rounds), --warmup, --json."""
    if repeats is not None:
        p.add_argument("--repeats", type=int, default=repeats, help=f"interleaved rounds per case (>= {MIN_REPEATS} "
                       "to resolve a ratio)")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed rounds before the timed ones")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")


# ---- machine load --------------------------------------------------------------------------------

def read_loadavg() -> tuple[float, int]:
    """(1-minute load average, processes runnable right now), from /proc/loadavg (0, 0 elsewhere)."""
    try:
        with open("/proc/loadavg") as f:
            parts = f.read().split()
        return float(parts[0]), int(parts[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return 0.0, 0


class LoadMonitor:
    """Samples /proc/loadavg every `interval` s in a daemon thread while the benchmark runs."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.before: float = 0.0
        self.after: float = 0.0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LoadMonitor:
        self.before = read_loadavg()[0]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(read_loadavg())

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.after = read_loadavg()[0]
        return self.summary()

    def summary(self) -> dict[str, float]:
        loads = [s[0] for s in self.samples] or [self.before]
        running = [s[1] for s in self.samples] or [0]
        return {"cores": os.cpu_count() or 0, "load_before": self.before, "load_after": self.after,
                "load_max": max(loads + [self.after]), "runnable_mean": statistics.fmean(running)}

    def line(self) -> str:
        s = self.summary()
        return (f"machine load: 1-min load average {s['load_before']:.1f} before, {s['load_after']:.1f} after, "
                f"max {s['load_max']:.1f}; {s['runnable_mean']:.1f} runnable processes on average; "
                f"{s['cores']} cores")


# ---- timing ---------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any], clock: str = "wall") -> tuple[float, Any]:
    """(seconds, result) of one call; clock "wall" (perf_counter) or "cpu" (this process's CPU time)."""
    now = time.perf_counter if clock == "wall" else time.process_time
    t = now()
    out = fn()
    return now() - t, out


def interleaved(cases: dict[str, Callable[[], Any]], repeats: int, warmup: int = 0,
                clock: str = "wall") -> dict[str, list[float]]:
    """Seconds per call of each case over `repeats` rounds. Every round runs every case once, in an
    order that rotates from round to round, so load drifts and cache effects hit all cases alike."""
    names = list(cases)
    for i in range(warmup):
        for name in names[i % len(names):] + names[: i % len(names)]:
            cases[name]()
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(timed(cases[name], clock)[0])
    return out


def step_times(step: Callable[[], Any], warmup: int, reps: int, sync: Callable[[], Any] = lambda: None) -> list[float]:
    """Seconds of each of `reps` calls after `warmup` untimed ones (`sync` waits for a device)."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return times


# ---- statistics --------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = "{:.3g}") -> str:
    """'median (min-max, n=N)'."""
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})"


def rate_ratios(times_a: Sequence[float], times_b: Sequence[float]) -> list[float]:
    """Per-round speed of a relative to b when both did the same work: t_b / t_a."""
    return [b / a for a, b in zip(times_a, times_b, strict=True)]


@dataclass
class Ratio:
    label: str
    values: list[float]  # one per repeat
    goal: float | None = None
    higher_is_better: bool = True
    unit: str = "x"
    median: float = field(init=False)
    lo: float = field(init=False)
    hi: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"ratio {self.label!r}: no repeats measured")
        self.median, self.lo, self.hi = median(self.values), min(self.values), max(self.values)

    @property
    def effect(self) -> float:
        return abs(self.median - 1.0)

    @property
    def resolved(self) -> bool:
        """At least MIN_REPEATS repeats, and their range narrower than the distance from 1.0."""
        return len(self.values) >= MIN_REPEATS and (self.hi - self.lo) < self.effect

    @property
    def verdict(self) -> str | None:
        """'met' / 'missed' when every repeat is on the same side of the goal, else 'undecided'."""
        if self.goal is None:
            return None
        ok = [(v >= self.goal) if self.higher_is_better else (v <= self.goal) for v in self.values]
        return "met" if all(ok) else "missed" if not any(ok) else "undecided"

    def text(self) -> str:
        rng = f"per-repeat {self.lo:.3f}-{self.hi:.3f}, n={len(self.values)}"
        if self.resolved:
            head = f"{self.label}: {self.median:.3f}{self.unit} ({rng})"
        else:
            why = (f"only {len(self.values)} repeat(s)" if len(self.values) < MIN_REPEATS else
                   f"the spread {self.hi - self.lo:.3f} is wider than the effect {self.effect:.3f}")
            head = f"{self.label}: unresolved (median {self.median:.3f}{self.unit}, {rng}: {why})"
        if self.goal is not None:
            sign = ">=" if self.higher_is_better else "<="
            head += f" [goal {sign} {self.goal:g}{self.unit}: {self.verdict}]"
        return head

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(resolved=self.resolved, verdict=self.verdict, effect=self.effect)
        return d


# ---- one run of a benchmark ----------------------------------------------------------------------

class Bench:
    """Context for one benchmark run: prints the machine and its load, collects ratios and values,
    and writes them to --json when asked."""

    def __init__(self, name: str, args: argparse.Namespace | None = None):
        self.name = name
        self.json_path: Path | None = getattr(args, "json", None)
        self.args = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args or argparse.Namespace()).items()}
        self.load = LoadMonitor()
        self.ratios: list[Ratio] = []
        self.values: dict[str, Any] = {}

    def __enter__(self) -> Bench:
        self.load.start()
        print(f"{self.name}: {os.cpu_count()} cores, 1-min load average {self.load.before:.1f} at the start "
              f"(the machine may be shared: compare the ratios, not absolute rates)", flush=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.load.stop()
        print(self.load.line(), flush=True)
        if self.json_path is not None:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(json.dumps(self.result(), indent=2, default=str) + "\n")

    def ratio(self, label: str, values: Sequence[float], goal: float | None = None, higher_is_better: bool = True,
              unit: str = "x") -> Ratio:
        r = Ratio(label, [float(v) for v in values], goal, higher_is_better, unit)
        self.ratios.append(r)
        print(r.text(), flush=True)
        return r

    def record(self, key: str, value: Any) -> None:
        self.values[key] = value

    def result(self) -> dict[str, Any]:
        return {"benchmark": self.name, "argv": sys.argv[1:], "args": self.args, "load": self.load.summary(),
                "ratios": [r.to_dict() for r in self.ratios], "values": self.values}
