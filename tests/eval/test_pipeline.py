"""End to end with a tiny random model on the real test sets (numbers near chance; the pipeline is the test)."""

import json
import math

import pytest

from eval.app import run
from eval.config import compose
from eval.errors import ContaminationError
from tests.conftest import shared_path


def _run(*overrides):
    return run(compose(list(overrides)))


@pytest.fixture
def data():
    return shared_path()


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    from eval.modeling import load

    return load(tiny_checkpoint)


def test_pubmedqa_likelihood_end_to_end(tiny_checkpoint, tmp_path, data):
    out = tmp_path / "pqa"
    r = _run("task=pubmedqa", f"checkpoint={tiny_checkpoint}", f"out_dir={out}", "limit=4",
             f"task.bench_dir={data}", "allow_contaminated=true")
    assert r["counts"]["evaluated"] == 4 and r["counts"]["failed"] == 0  # likelihood always answers
    assert 0.0 <= r["metrics"]["accuracy"] <= 1.0
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x)["prediction"].startswith("the answer to") for x in lines)
    assert r["contaminated_pmids"] == ["12377809"]
    assert (out / "confusion_matrix.png").stat().st_size > 0
    # The written predictions score to the same numbers through the prediction-file path.
    again = _run("task=pubmedqa", f"predictions={out / 'predictions.jsonl'}", f"out_dir={tmp_path / 'again'}",
                 "limit=4", f"task.bench_dir={data}")
    # (the length-normalised accuracies need the model's scores, so only the checkpoint run has them)
    assert again["metrics"] == {k: v for k, v in r["metrics"].items() if not k.startswith("accuracy_norm")}
    assert 0.0 <= r["metrics"]["accuracy_norm_token"] <= 1.0 and 0.0 <= r["metrics"]["accuracy_norm_byte"] <= 1.0


def test_contamination_guard_refuses_by_default(tiny_checkpoint, tmp_path, data):
    with pytest.raises(ContaminationError, match="12377809"):
        _run("task=pubmedqa", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path}", "limit=2", f"task.bench_dir={data}")
    assert not (tmp_path / "results.json").exists()


def test_ddi_generation_end_to_end(tiny_checkpoint, tmp_path, data):
    r = _run("task=ddi", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path}", "limit=3",
             "generation.max_new_tokens=8", f"task.bench_dir={data}")
    assert r["counts"]["evaluated"] == 3
    assert {"precision", "recall", "f1"} <= set(r["metrics"])
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 3


def test_generate_task_and_sampling_options(tiny_checkpoint, loaded, tmp_path):
    import torch

    from eval.config import GenerationConfig
    from eval.sampling import generate_texts, text_prompt

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the drug aspirin\nwarfarin increased\n")
    greedy = _run("task=generate", f"checkpoint={tiny_checkpoint}", f"task.prompts_file={prompts}",
                  "generation.max_new_tokens=6", f"out_dir={tmp_path / 'g'}")
    assert [g["prompt"] for g in greedy["generations"]] == ["the drug aspirin", "warfarin increased"]
    assert greedy["generation"]["greedy"] is True
    assert (tmp_path / "g" / "results.md").read_text().count("warfarin increased") == 1
    gen = GenerationConfig(max_new_tokens=4, greedy=False, temperature=1.5, top_k=50, top_p=0.95)
    row = [text_prompt(loaded, "the drug aspirin", gen.max_new_tokens)]
    sampled = [generate_texts(loaded, row, gen, torch.Generator().manual_seed(s)) for s in (1, 2, 1)]
    assert sampled[0] == sampled[2]  # same seed, same text
    assert sampled[0] != sampled[1]  # another seed, other text: sampling is on
    greedy_row = [text_prompt(loaded, "the drug aspirin", 6)]
    assert generate_texts(loaded, greedy_row, GenerationConfig(max_new_tokens=6))[0] == greedy["generations"][0]["generation"]


def test_perplexity_and_bits_per_byte(tiny_checkpoint, tiny_data, tmp_path):
    r = _run("task=perplexity", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path}", "task.block_size=32",
             "task.max_windows=6", "task.batch_size=4")
    m, c = r["metrics"], r["counts"]
    assert c["windows"] == 6 and c["tokens"] == 6 * 32 and c["bytes"] > 0
    # A random model over V tokens: perplexity in the order of V (387), and the identity between the two.
    assert 50 < m["perplexity"] < 5000
    assert m["bits_per_byte"] == pytest.approx(math.log(m["perplexity"]) * c["tokens"] / math.log(2) / c["bytes"])
    assert r["data"] == str(tiny_data["dir"]) + "/manifest.json"  # found through the checkpoint's info


def test_prompt_formats(loaded, data):
    """The `train` format is the source train/ fine-tunes on (the same Task.source), without an EOS."""
    import tasks
    from eval.prompts import source_ids

    task, pmid = tasks.get("pubmedqa"), "12377809"
    bench = task.test_set(task.paths(data))
    text, eos_first = bench.source(pmid, "train")
    assert text == task.example(pmid, bench.item(pmid), data).source and not eos_first
    text, eos_first = bench.source(pmid, "biogpt")
    assert text.startswith("question: is anorectal endosonography valuable in dyschesia? context: ") and eos_first
    ids = source_ids(loaded, bench, pmid, "train", room=20)
    assert ids == loaded.codec.encode(bench.source(pmid, "train")[0])[:20]  # the end is cut, as train/ does
    assert source_ids(loaded, bench, pmid, "biogpt", room=20)[0] == loaded.codec.eos_id


def test_likelihood_scores_are_summed_token_logprobs(loaded):
    import torch

    from eval.modeling import continuation_logprobs

    context, options = [2, 40, 41, 42], [[50], [60, 61], [70, 71, 72]]
    got = continuation_logprobs(loaded, context, options)
    for opt, score in zip(options, got, strict=True):
        seq = torch.tensor([context + opt])
        with torch.no_grad():
            logp = torch.log_softmax(loaded.model(seq).float(), dim=-1)[0]  # (T, V)
        want = sum(float(logp[len(context) - 1 + i, t]) for i, t in enumerate(opt))
        assert score == pytest.approx(want, abs=1e-4)
