"""Perplexity on texts with character spans (`task.texts=`): bits per byte over spans, rare words,
numeric expressions and token positions, on the tiny random checkpoint of conftest.py."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from eval.app import run
from eval.config import compose
from tasks.base import DataFileError
from tasks.pretrain import TextItem, count_words, numeric_spans, read_texts, read_word_counts

GREEK = "The IC50 was 8.3 μM (p < 0.01) for α-tocopherol and β-carotene; Δψ fell by 12 % in Ca²⁺-free drug."
PLAIN = "the drug aspirin increased risk of bleeding and warfarin interaction between patients."
LONG = " ".join(["aspirin and warfarin increased the risk of bleeding in patients"] * 20)


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def _eval(tmp_path, ckpt, rows, *extra, name="texts.jsonl"):
    texts = _write(tmp_path / name, rows)
    return run(compose(["task=perplexity", f"checkpoint={ckpt}", f"out_dir={tmp_path / 'out'}",
                        f"task.texts={texts}", "task.block_size=16", "task.batch_size=3", *extra]))


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    from eval.modeling import load

    return load(tiny_checkpoint)


def test_spans_covering_whole_texts_give_bits_per_byte(tiny_checkpoint, tmp_path):
    rows = [{"id": str(i), "text": t, "spans": [[0, len(t)]]} for i, t in enumerate((GREEK, PLAIN, LONG))]
    r = _eval(tmp_path, tiny_checkpoint, rows, name="texts.jsonl.gz")
    m, c = r["metrics"], r["counts"]
    assert c["span_bytes"] == c["bytes"] == sum(len(t.encode()) for t in (GREEK, PLAIN, LONG))
    assert m["span_bits_per_byte"] == pytest.approx(m["bits_per_byte"], rel=1e-12)
    # the same bits, counted per token: nll_per_token * tokens / ln 2 = bits_per_byte * bytes
    assert m["nll_per_token"] * c["tokens"] / math.log(2) == pytest.approx(m["bits_per_byte"] * c["bytes"], rel=1e-9)
    # LONG is cut into windows of 16 predicted tokens: the position buckets reach the block size
    pos = r["extra"]["loss_by_position"]
    assert pos[-1]["positions"] == [8, 16] and pos[-1]["tokens"] > 0 and sum(p["tokens"] for p in pos) == c["tokens"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["metrics"]["span_bits_per_byte"] == m["span_bits_per_byte"]


def test_text_without_spans_adds_nothing_to_the_span_metric(tiny_checkpoint, tmp_path):
    alone = _eval(tmp_path / "a", tiny_checkpoint, [{"id": "g", "text": GREEK, "spans": [[13, 19], [40, 53]]}])
    both = _eval(tmp_path / "b", tiny_checkpoint, [{"id": "g", "text": GREEK, "spans": [[13, 19], [40, 53]]},
                                                   {"id": "p", "text": PLAIN}])
    assert both["counts"]["span_bytes"] == alone["counts"]["span_bytes"]
    assert both["metrics"]["span_bits_per_byte"] == pytest.approx(alone["metrics"]["span_bits_per_byte"], rel=1e-12)
    assert both["counts"]["texts_with_spans"] == 1 and both["counts"]["bytes"] > alone["counts"]["bytes"]
    none = _eval(tmp_path / "c", tiny_checkpoint, [{"id": "p", "text": PLAIN}])
    assert "span_bits_per_byte" not in none["metrics"] and "span_bytes" not in none["counts"]


def test_offsets_are_characters_not_bytes(loaded):
    from eval.perplexity import evaluate_texts

    start = GREEK.index("8.3 μM")
    span = (start, start + len("8.3 μM"))  # 6 characters, 7 UTF-8 bytes ("μ" is two)
    greek = (GREEK.index("α-tocopherol"), GREEK.index("α-tocopherol") + 1)  # "α" alone: 2 bytes
    r = evaluate_texts(loaded, [TextItem("g", GREEK, (span, greek))], 16, 2, progress=False)
    assert r["counts"]["span_bytes"] == 7 + 2
    # the same bytes written as byte offsets would land elsewhere: the metric follows characters
    shifted = evaluate_texts(loaded, [TextItem("g", GREEK, ((span[0] + 1, span[1] + 1),))], 16, 2, progress=False)
    assert shifted["counts"]["span_bytes"] == len(GREEK[span[0] + 1: span[1] + 1].encode())


def test_byte_bits_conserve_every_tokens_bits():
    from eval.perplexity import byte_bits

    text = "μM α"  # bytes: μ(2) M(1) ' '(1) α(2)
    # tokens: a prefix space mapped to no character, "μ" split over two byte tokens, "M", " α"
    offsets = [(0, 0), (0, 1), (0, 1), (1, 2), (2, 4)]
    bits = np.array([1.0, 2.0, 4.0, 3.0, 6.0])
    per_byte = byte_bits(text, offsets, bits)
    assert per_byte.size == 6 and per_byte.sum() == pytest.approx(bits.sum())
    assert per_byte.tolist() == pytest.approx([1 + 1 + 2, 1 + 2, 3, 2, 2, 2])


def test_rare_words_and_numeric_metrics(tiny_checkpoint, tmp_path):
    counts = count_words([PLAIN] * 10)  # every PLAIN word seen 10 times; GREEK's others unseen
    (tmp_path / "counts.json").write_text(json.dumps(counts))
    r = _eval(tmp_path, tiny_checkpoint, [{"id": "g", "text": GREEK}, {"id": "p", "text": PLAIN}],
              f"task.word_counts={tmp_path / 'counts.json'}", "task.rare_max_count=5")
    m, c = r["metrics"], r["counts"]
    # case-folded counts: "The" is PLAIN's "the"; "⁺" is not a word character, so "Ca²⁺-free" is two words
    rare_words = [w for w in ("IC50", "was", "8", "3", "μM", "p", "0", "01", "for", "α-tocopherol", "β-carotene",
                              "Δψ", "fell", "by", "12", "in", "Ca²", "free")]
    assert c["rare_word_bytes"] == sum(len(w.encode()) for w in rare_words)
    assert c["numeric_bytes"] == sum(len(s.encode()) for s in ("IC50 was 8.3 μM", "p < 0.01", "12 %"))
    assert m["rare_word_bits_per_byte"] > 0 and m["numeric_bits_per_byte"] > 0
    assert r["extra"]["numeric_by_kind"]["p_value"]["bytes"] == len("p < 0.01")


@pytest.mark.parametrize(("text", "found"), [
    ("inhibited with an IC50 = 8.3 μM in cells", ["IC50 = 8.3 μM"]),
    ("EC50 of 12 nM and Ki 4.1 nM", ["EC50 of 12 nM", "Ki 4.1 nM"]),
    ("significant (P = .003) and p<1e-4", ["P = .003", "p<1e-4"]),
    ("OR 1.5 (95% CI 1.2-3.4) overall", ["95% CI 1.2-3.4)"]),
    ("given 10-20 mg/kg for 12 weeks at 37 °C", ["10-20 mg/kg", "12 weeks", "37 °C"]),
    ("in 2004 the 3 groups had 5 members", []),
])
def test_numeric_patterns(text, found):
    assert [text[s:e] for s, e in numeric_spans(text)] == found


@pytest.mark.parametrize(("line", "reason"), [
    ("{not json", "not JSON"),
    ('["a"]', "expected a JSON object"),
    ('{"id": "x"}', '"text" must be a non-empty string'),
    ('{"id": "x", "text": "abc", "spans": [[2, 9]]}', "span [2, 9] is not [start, end]"),
    ('{"id": "x", "text": "abc", "spans": [[1]]}', "span [1] is not"),
    ('{"id": "x", "text": "abc", "spans": "0-2"}', '"spans" must be a list'),
])
def test_bad_lines_name_file_and_line(tmp_path, line, reason):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "ok", "text": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataFileError) as e:
        read_texts(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:3: ") and reason in msg and "\n" not in msg


def test_duplicate_ids_and_bad_word_counts(tmp_path):
    path = _write(tmp_path / "d.jsonl", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    with pytest.raises(DataFileError, match=r"d.jsonl:2: duplicate id 'a'"):
        read_texts(path)
    (tmp_path / "c.json").write_text('{"aspirin": "many"}')
    with pytest.raises(DataFileError, match="expected a JSON object"):
        read_word_counts(tmp_path / "c.json")


def test_missing_texts_file_is_a_config_error(tiny_checkpoint, tmp_path):
    from common.config import ConfigError
    from eval.config import build_config

    with pytest.raises(ConfigError, match="task.texts"):
        build_config(compose(["task=perplexity", f"checkpoint={tiny_checkpoint}", f"out_dir={tmp_path}",
                              f"task.texts={tmp_path / 'nope.jsonl'}"]))
