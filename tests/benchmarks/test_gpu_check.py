"""benchmarks/gpu_check: the driver records failures and time-outs as data and keeps going, and the
whole check runs on a CPU with --dry-run (the CI run of the script before any GPU sees it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gpu_check import Section, render_md, run_plan

ROOT = Path(__file__).resolve().parents[2]


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_failed_crashed_and_hung_sections_are_recorded_and_the_rest_runs(tmp_path):
    ok = "import json, os; open(os.environ['GPU_CHECK_RESULT'], 'w').write(json.dumps({'status': 'ok', 'x': 7}))"
    sections = [
        Section("crash", "cmd", {}, 30, "raises", argv=_py("raise RuntimeError('boom')")),
        Section("hang", "cmd", {}, 2, "sleeps past its budget", argv=_py("import time; time.sleep(60)")),
        Section("fine", "cmd", {}, 30, "writes a result", argv=_py(ok)),
        Section("late", "cmd", {}, 30, "no time left for it", argv=_py(ok)),
    ]
    results = run_plan(sections, tmp_path, budget_s=45, meta={"dry_run": True, "budget_s": 45})
    assert results["crash"]["status"] == "error" and "boom" in results["crash"]["log_tail"]
    assert results["hang"]["status"] == "timeout" and results["hang"]["seconds"] < 30
    assert results["fine"]["status"] == "ok" and results["fine"]["x"] == 7
    assert results["late"]["status"] in ("ok", "skipped")
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(doc["sections"]) == {"crash", "hang", "fine", "late"}
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| crash | error |" in md and "| hang | timeout |" in md and "boom" in md


def test_out_of_budget_sections_are_skipped_with_the_command_to_run_them(tmp_path):
    ok = "import json, os; open(os.environ['GPU_CHECK_RESULT'], 'w').write(json.dumps({'status': 'ok'}))"
    results = run_plan([Section("a", "cmd", {}, 60, "t", argv=_py(ok))], tmp_path, budget_s=10, meta={})
    assert results["a"]["status"] == "skipped" and "--only a" in results["a"]["reason"]


def test_markdown_renders_throughput_rows():
    doc = {"counts": {"ok": 1}, "sections": {"tput.eager.sdpa": {
        "status": "ok", "tokens_per_s": 1234.0, "tokens_per_s_range": [1000.0, 1300.0], "mfu": 0.456,
        "mfu_no_head": 0.4, "step_s": [0.1, 0.2, 0.3], "peak_mem_gib": 12.0,
        "resolved_backends": {"local": "flex", "global": "sdpa"}}}}
    md = render_md(doc)
    assert "| sdpa | eager | ok | 1,234 (1,000-1,300) | 45.6% | 40.0% | 0.200 | 12.0 | flex/sdpa |" in md


@pytest.mark.slow
def test_dry_run_on_cpu(tmp_path):
    out = tmp_path / "gpucheck"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    sec = doc["sections"]
    assert doc["dry_run"] is True
    must_pass = ["env", "data", "tput.eager.sdpa", "tput.eager.blocked", "tput.compiled.sdpa", "fit.biogpt.search",
                 "fit.biogpt.train", "strategy.zero2", "strategy.fsdp", "resume", "pytest.gpu",
                 "fit.biogpt_large.zero3"]
    for name in must_pass:
        assert sec[name]["status"] == "ok", (name, sec[name].get("error"), sec[name].get("log_tail", "")[-1500:])
    assert sec["tput.eager.sdpa"]["tokens_per_s"] > 0 and sec["tput.eager.sdpa"]["flops_per_token"] > 0
    assert sec["fit.biogpt.search"]["largest_ok"] == 4  # every dry-run candidate fits
    assert sec["fit.biogpt.train"]["batch"] == 4 and len(sec["fit.biogpt.train"]["losses"]) == 3
    assert sec["resume"]["match"] and sec["resume"]["compared_steps"] == 8
    assert sec["strategy.zero2"]["composed_only"] and sec["strategy.zero2"]["strategy"] == "deepspeed"
    assert sec["pytest.gpu"]["failed"] == 0 and sec["pytest.gpu"]["skipped"] >= 1
    # backends the CPU cannot run are data, not a crash of the check
    assert sec["tput.eager.flex"]["status"] in ("ok", "error")
    assert sec["tput.eager.flash"]["status"] in ("ok", "skipped")
    md = (out / "gpu_check.md").read_text()
    assert md.startswith("# GPU check (dry run on CPU, tiny preset)")
    assert all(f"| {name} |" in md for name in must_pass if not name.startswith(("tput.", "env")))
    assert not (out / "work").exists()  # scratch data removed
