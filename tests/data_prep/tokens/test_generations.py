"""The token-shard reader over a corpus with generations (issue 13): only live documents are
served, as one contiguous stream; `generations=` restricts to what those generations wrote; the
retired lists are checked against the manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.errors import PrepError
from data_prep.tokens.shards import ShardWriter, TokenShards

from .generations import append_generation, check_view

EOS = 2


def _docs(rng, n, lo=4, hi=500):
    return [rng.integers(lo, hi, size=int(k)) for k in rng.integers(0, 30, size=n)]


def _gen1(tmp_path, docs, max_tokens=100):
    w = ShardWriter(tmp_path / "shards", "train", vocab_size=500, eos_id=EOS, max_tokens=max_tokens, rel_to=tmp_path)
    for d in docs:
        w.add(d)
    infos = [i.to_dict() for i in w.close()]
    manifest = {"format_version": 1, "tokenizer": {"eos_id": EOS, "vocab_size": 500}, "dtype": "uint16",
                "splits": {"train": {"tokens": sum(i["tokens"] for i in infos), "documents": len(docs),
                                     "shards": infos}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return infos


def _flat(docs):
    return np.concatenate([np.append(d, EOS) for d in docs]).astype(np.int64)


@pytest.fixture
def corpus(tmp_path):
    """Generation 1: 60 documents over several shards; generation 2: 25 more, retiring 9 of the
    first (a shard's first and last document, a run of neighbours, the very first and last);
    generation 3: 10 more, retiring one of generation 2's and one already retired."""
    rng = np.random.default_rng(0)
    g1, g2, g3 = _docs(rng, 60), _docs(rng, 25), _docs(rng, 10)
    infos = _gen1(tmp_path, g1)
    assert len(infos) > 4
    first_of_shard1 = infos[0]["documents"]
    retired2 = sorted({0, first_of_shard1 - 1, first_of_shard1, 20, 21, 22, 23, 40, 59})
    append_generation(tmp_path, {"train": g2}, {"train": retired2}, max_tokens=120)
    retired3 = [21, 60 + 3]  # 21 again (already gone), and generation 2's fourth document
    append_generation(tmp_path, {"train": g3}, {"train": retired3}, max_tokens=120)
    gone = set(retired2) | set(retired3)
    everything = g1 + g2 + g3
    return {"dir": tmp_path, "g1": g1, "g2": g2, "g3": g3, "gone": gone,
            "live": [d for i, d in enumerate(everything) if i not in gone],
            "live_by_gen": {g: [d for i, d in enumerate(everything) if i not in gone and lo <= i < hi]
                            for g, (lo, hi) in {1: (0, 60), 2: (60, 85), 3: (85, 95)}.items()}}



def test_default_view_serves_every_live_document_and_no_retired_one(corpus):
    view = TokenShards.from_manifest(corpus["dir"], "train")
    assert view.generations == [1, 2, 3]
    assert view.retired_documents == len(corpus["gone"])
    check_view(view, corpus["live"])
    # memory grows with shards and retired runs, not with tokens
    assert len(view._seg_shard) <= view.num_shards + len(corpus["gone"])


@pytest.mark.parametrize("gens", [[1], [2], [3], [2, 3], [1, 3]])
def test_generation_views_keep_their_documents_with_every_retirement(corpus, gens):
    view = TokenShards.from_manifest(corpus["dir"], "train", generations=gens)
    assert view.generations == gens
    check_view(view, [d for g in gens for d in corpus["live_by_gen"][g]])


def test_generation_spans_locate_each_generation_in_the_stream(corpus):
    view = TokenShards.from_manifest(corpus["dir"], "train")
    spans = view.generation_spans()
    assert [s.generation for s in spans] == [1, 2, 3]
    lens = {g: [d.size + 1 for d in docs] for g, docs in corpus["live_by_gen"].items()}
    start = 0
    for s in spans:
        n = sum(lens[s.generation])
        assert s.tokens == (start, start + n)
        start += n
    assert spans[1].documents == (len(lens[1]), len(lens[1]) + len(lens[2]))


def test_a_corpus_without_generations_reads_as_before(tmp_path):
    rng = np.random.default_rng(1)
    docs = _docs(rng, 40)
    infos = _gen1(tmp_path, docs)
    view = TokenShards.from_manifest(tmp_path, "train")
    assert view.generations == [1] and view.num_shards == len(infos)
    assert [(s.generation, s.tokens) for s in view.generation_spans()] == [(1, (0, _flat(docs).size))]
    check_view(view, docs)
    with pytest.raises(PrepError, match=r"no generation 2 \(has: 1\)"):
        TokenShards.from_manifest(tmp_path, "train", generations=[2])


def _retired_file(corpus, gen=2):
    return corpus["dir"] / "retired" / f"gen-{gen:05d}-train.u64"


def test_truncated_retired_list_is_named(corpus):
    p = _retired_file(corpus)
    p.write_bytes(p.read_bytes()[:-8])
    with pytest.raises(PrepError, match=rf"^{p}: 64 bytes, manifest says 72 \(9 documents\).*generation 2"):
        TokenShards.from_manifest(corpus["dir"], "train")


def test_changed_retired_list_fails_its_checksum(corpus):
    p = _retired_file(corpus)
    ids = np.fromfile(p, dtype="<u8")
    ids[-1] = 58  # same size, another document
    ids.tofile(p)
    with pytest.raises(PrepError, match=rf"^{p}: sha256 differs from the manifest"):
        TokenShards.from_manifest(corpus["dir"], "train")


def test_missing_retired_list_is_named(corpus):
    p = _retired_file(corpus, 3)
    p.unlink()
    with pytest.raises(PrepError, match=rf"^{p}: retired-document file missing"):
        TokenShards.from_manifest(corpus["dir"], "train", generations=[1])


def test_unsorted_retired_list_is_refused_even_with_a_matching_checksum(corpus):
    import hashlib

    p = _retired_file(corpus)
    raw = np.fromfile(p, dtype="<u8")[::-1].copy().tobytes()
    p.write_bytes(raw)
    manifest = json.loads((corpus["dir"] / "manifest.json").read_text())
    manifest["generations"][1]["retired"]["train"]["sha256"] = hashlib.sha256(raw).hexdigest()
    (corpus["dir"] / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PrepError, match=rf"^{p}: not sorted unique document indices"):
        TokenShards.from_manifest(corpus["dir"], "train")


def test_views_pickle_for_dataloader_workers(corpus):
    import pickle

    view = TokenShards.from_manifest(corpus["dir"], "train", generations=[2, 3])
    view.window(0, 50)  # memmaps open
    again = pickle.loads(pickle.dumps(view))
    np.testing.assert_array_equal(again.window(0, view.num_tokens), view.window(0, view.num_tokens))
