"""benchmarks/_stats.py: a ratio is printed only when its spread over repeats is narrower than the
effect, verdicts need every repeat to agree, rounds rotate, and the load is read from /proc."""

from __future__ import annotations

import argparse
import json

import pytest
from _stats import Bench, Ratio, add_common_args, interleaved, rate_ratios, read_loadavg


def test_resolved_ratio_is_printed_with_its_range():
    r = Ratio("ours / ref", [3.1, 3.3, 3.2, 3.4, 3.0], goal=3.0)
    assert r.resolved and r.median == pytest.approx(3.2)
    assert r.text().startswith("ours / ref: 3.200x (per-repeat 3.000-3.400, n=5)")
    assert r.verdict == "met"


def test_spread_wider_than_the_effect_is_unresolved():
    r = Ratio("lightning / plain", [0.93, 1.02, 0.97, 1.05, 0.99], goal=0.95)
    assert not r.resolved  # range 0.12 against an effect of 0.01
    text = r.text()
    assert "unresolved" in text and "0.930-1.050" in text and "wider than the effect" in text
    assert r.verdict == "undecided"  # repeats on both sides of the goal


def test_too_few_repeats_is_unresolved_even_without_spread():
    r = Ratio("x", [2.0, 2.0])
    assert not r.resolved and "only 2 repeat(s)" in r.text()


def test_lower_is_better_goal_and_missed_verdict():
    assert Ratio("peak memory", [0.5, 0.52, 0.51], goal=0.6, higher_is_better=False).verdict == "met"
    assert Ratio("speed", [0.7, 0.72, 0.71], goal=0.8).verdict == "missed"


def test_rate_ratios_are_per_round_time_quotients():
    assert rate_ratios([1.0, 2.0], [3.0, 4.0]) == [3.0, 2.0]
    with pytest.raises(ValueError):
        rate_ratios([1.0], [1.0, 2.0])


def test_interleaved_rotates_the_order_and_times_every_round():
    calls: list[str] = []
    cases = {n: (lambda n=n: calls.append(n)) for n in "abc"}
    times = interleaved(cases, repeats=3, warmup=1)
    assert calls[3:] == list("abc" "bca" "cab")  # after the warm-up round
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_loadavg_is_read_from_proc():
    load, running = read_loadavg()
    with open("/proc/loadavg") as f:
        first = float(f.read().split()[0])
    assert load == pytest.approx(first, abs=5.0) and running >= 1  # this process is running


def test_bench_writes_json_with_load_and_ratios(tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_common_args(p)
    args = p.parse_args(["--json", str(tmp_path / "r.json"), "--repeats", "3"])
    with Bench("bench_test", args) as b:
        b.ratio("a / b", [1.5, 1.6, 1.55])
        b.record("rate", 123)
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["benchmark"] == "bench_test" and out["values"] == {"rate": 123}
    assert out["ratios"][0]["resolved"] and out["ratios"][0]["median"] == pytest.approx(1.55)
    assert {"load_before", "load_after", "load_max", "cores"} <= set(out["load"])
    printed = capsys.readouterr().out
    assert "a / b: 1.550x" in printed and "machine load:" in printed
