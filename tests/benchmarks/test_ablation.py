"""benchmarks/ablation.py: the arms' configs, BC5CDR span reading, and the summary (table + plots)
from synthetic finished runs."""

from __future__ import annotations

import json
import math

import ablation
import pytest

from tests.conftest import shared_path

PUBTATOR = """\
111|t|Famotidine-associated delirium.
111|a|A case of μM famotidine given to rats.
111\t0\t10\tFamotidine\tChemical\tD015738
111\t22\t30\tdelirium\tDisease\tD003693
111\t45\t55\tfamotidine\tChemical\tD015738
111\tCID\tD015738\tD003693

222|t|Indomethacin induced hypotension.
222|a|No mentions here.
222\t0\t12\tIndomethacin\tChemical\tD007213
"""


def _compose(arm: str):
    return ablation._compose_arm(arm)  # as `python -m train` composes it, nested experiment name checked


def test_arms_differ_only_in_embedding_stages_and_attention():
    # (window, char_stage, term_stage, gate_init, char_output)
    expected = {"base": (None, False, False, 0.0, False), "char": (None, True, False, 0.0, False),
                "term": (None, False, True, 0.0, False), "hybrid": (None, True, True, 0.0, False),
                "local": (64, False, False, 0.0, False), "local_hybrid": (64, True, True, 0.0, False),
                "char_out": (None, True, False, 0.3, True), "hybrid_gate": (None, True, True, 0.3, False), "hybrid_out": (None, True, True, 0.3, True)}
    assert set(expected) == set(ablation.ARMS) == {p.stem for p in (ablation.ROOT / "conf/experiment/ablation").glob("[!_]*.yaml")}
    common = None
    arm_keys = ("window", "char_stage", "term_stage", "gate_init", "char_output")
    for arm, values in expected.items():
        cfg = _compose(arm)
        m = cfg.model
        assert tuple(m[k] for k in arm_keys) == values, arm
        shared = {k: v for k, v in cfg.model.items() if k not in arm_keys}
        rest = (shared, cfg.task.seq_len, cfg.data.batch_size, cfg.trainer.max_steps, cfg.optim.lr, cfg.seed)
        common = common or rest
        assert rest == common, f"{arm} changes more than its arm"  # equal tokens, equal data order
        assert 4 <= m.n_layer <= 6 and 256 <= m.d_model <= 384 and 512 <= m.max_seq_len <= 1024


def test_pubtator_chemical_spans_are_character_offsets(tmp_path):
    path = tmp_path / "test.PubTator.txt"
    path.write_text(PUBTATOR, encoding="utf-8")
    docs = {d["id"]: d for d in ablation.read_pubtator(path)}
    d = docs["pmid:111"]
    assert d["text"] == "Famotidine-associated delirium. A case of μM famotidine given to rats."
    assert [d["text"][s:e] for s, e in d["spans"]] == ["Famotidine", "famotidine"]  # diseases dropped
    assert docs["pmid:222"]["spans"] == [[0, 12]]


def test_real_bc5cdr_test_spans_match_mentions():
    path = shared_path("biogpt", "BC5CDR", "CDR_Data", "CDR.Corpus.v010516", "CDR_TestSet.PubTator.txt")
    docs = ablation.read_pubtator(path)
    assert len(docs) == 500 and sum(len(d["spans"]) for d in docs) > 4000
    mentions = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) >= 5 and cols[4] == "Chemical":
            mentions.setdefault(f"pmid:{cols[0]}", set()).add(cols[3])
    for d in docs[:50]:
        for s, e in d["spans"]:
            piece = d["text"][s:e]
            assert any(m in piece for m in mentions[d["id"]]), (d["id"], piece)


def _fake_run(out, arm, seed, bpb, tps, duration):
    run = out / "runs" / arm / f"seed{seed}"
    for name, shift in (("heldout", 0.0), ("heldout_chem", 0.25), ("bc5cdr", 0.5)):
        (run / "eval" / name).mkdir(parents=True)
        metrics = {"bits_per_byte": bpb + shift, "span_bits_per_byte": bpb + 1 + shift,
                   "rare_word_bits_per_byte": bpb + 2, "numeric_bits_per_byte": bpb + 3}
        (run / "eval" / name / "results.json").write_text(json.dumps({"metrics": metrics}))
    (run / "metrics.csv").write_text("step,loss,lr,grad_norm,tokens_per_s,tokens_seen,mfu,time\n"
                                     f"1,5.0,0.1,1.0,{tps},100,0,{duration / 2}\n2,4.0,0.1,1.0,{tps},200,0,{duration}\n")
    (run / "val_metrics.csv").write_text(f"step,val_loss,time\n1,{bpb + 4},{duration / 2}\n2,{bpb + 3},{duration}\n")
    (run / "ablation.json").write_text(json.dumps({"arm": arm, "seed": seed, "params": 2_500_000}))


@pytest.mark.slow
def test_summarize_writes_table_and_plots(tmp_path):
    for seed, (b, h) in enumerate(((1.0, 0.8), (1.2, 0.9))):
        _fake_run(tmp_path, "base", seed, b, 1000.0, 10.0)
        _fake_run(tmp_path, "hybrid", seed, h, 800.0, 20.0)
    md = ablation.summarize(tmp_path)
    text = md.read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    sd = math.sqrt(((1.0 - 1.1) ** 2 + (1.2 - 1.1) ** 2) / 1)  # sample std of base's held-out bits/byte
    assert f"1.1000 ± {sd:.4f}" in rows["base"] and "0.8500 ± 0.0707" in rows["hybrid"]
    assert "| 2 | 2.50M |" in rows["base"] and "1000 ± 0" in rows["base"]
    # equal wall time = 10 s, the shortest run: hybrid has only its step-1 validation by then
    assert "val nats/token at 10 s" in text
    assert rows["hybrid"].split(" | ")[-2] == "4.8500 ± 0.0707" and rows["base"].split(" | ")[-2] == "4.1000 ± " + f"{sd:.4f}"
    # difference from base: -0.25 against a spread of 0.1414 (base's std) is within 2 x spread
    assert rows["Δ hybrid"].split(" | ")[1] == f"-0.2500 (spread {sd:.4f}, within noise)"
    for png in ("ablation_val_curves.png", "ablation_span_metrics.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG" and f"({png})" in text


def test_summarize_without_runs_says_what_to_do(tmp_path):
    with pytest.raises(ablation.AblationError, match="no finished run"):
        ablation.summarize(tmp_path)


def test_val_at_takes_the_last_validation_by_then():
    val = [(10, 5.0, 3.0), (20, 4.0, 6.0)]
    assert math.isnan(ablation.val_at(val, 2.0)) and ablation.val_at(val, 3.0) == 5.0 and ablation.val_at(val, 100) == 4.0


def test_prepare_splits_by_id_hash_with_chem_documents_in_both_parts(tmp_path):
    import gzip

    from data_prep.tokens.shards import TokenShards, split_of
    from tasks.pretrain import read_texts, read_word_counts

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    words = ["aspirin", "warfarin", "bleeding", "risk", "patients", "μM", "IC50", "of", "the", "and"]
    docs = [{"id": f"pmid:{i}", "text": " ".join(words[(i + k) % len(words)] for k in range(30)), "source": "s"}
            for i in range(300)]
    with gzip.open(corpus / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    chem = {d["id"]: [[d["text"].index("aspirin"), d["text"].index("aspirin") + 7]] for d in docs[::3]}
    with gzip.open(corpus / "chem_spans.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": k, "spans": v}) + "\n" for k, v in chem.items())
    (tmp_path / "cdr.txt").write_text(PUBTATOR, encoding="utf-8")

    data = ablation.prepare(tmp_path / "out", corpus, 0.2, 300, None, heldout_docs=10, pubtator=tmp_path / "cdr.txt")
    held = {d["id"] for d in docs if split_of(d["id"], 0.2) == "val"}
    train, val = TokenShards.from_manifest(data, "train"), TokenShards.from_manifest(data, "val")
    assert val.num_documents == len(held) and train.num_documents == 300 - len(held)
    heldout = read_texts(tmp_path / "out" / "heldout.jsonl.gz")
    chem_held = read_texts(tmp_path / "out" / "heldout_chem.jsonl.gz")
    assert len(heldout) == 10 and {t.id for t in heldout} <= held
    assert {t.id for t in chem_held} == held & set(chem) and 0 < len(chem_held) < len(chem)  # chem docs on both sides
    assert all(t.text[s:e] == "aspirin" for t in chem_held for s, e in t.spans)
    assert [t.id for t in read_texts(tmp_path / "out" / "bc5cdr_test.jsonl.gz")] == ["pmid:111", "pmid:222"]
    assert read_word_counts(tmp_path / "out" / "word_counts.json")["aspirin"] == 30 * (300 - len(held)) // len(words)

    # speed: every arm's training step, interleaved with base's, as ratios with their rounds
    result = tmp_path / "speed.json"
    ratios = ablation.speed(("base", "char_out"), repeats=2, warmup=0, json_path=result, data=data)
    saved = json.loads(result.read_text())
    assert len(saved["values"]["base_step_s"]) == 2 and len(saved["values"]["char_out_step_s"]) == 2
    assert saved["values"]["char_out_params"] > saved["values"]["base_params"]
    assert [r["label"] for r in saved["ratios"]] == ["char_out training step speed vs base"]
    assert len(ratios["char_out"].values) == 2 and all(v > 0 for v in ratios["char_out"].values)


def test_prepare_pmc_keeps_long_english_full_texts(tmp_path):
    import gzip

    pmc = shared_path("pmc")
    path = ablation.prepare_pmc(tmp_path, pmc)
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    assert len(rows) >= 10 and len({r["id"] for r in rows}) == len(rows)
    assert all(len(r["text"]) >= ablation.PMC_MIN_CHARS for r in rows)
    total = sum(len(r["text"]) for r in rows)
    assert total >= ablation.PMC_MAX_CHARS and total - len(rows[-1]["text"]) < ablation.PMC_MAX_CHARS
    assert ablation.prepare_pmc(tmp_path, pmc) == path  # done once: a rerun keeps the file
