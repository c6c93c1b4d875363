"""Token shards: round trip (uint16/uint32), windows across shard boundaries, split stability."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.errors import PrepError
from data_prep.tokens.shards import ShardWriter, TokenShards, split_of, token_dtype
from tests.data_prep.tokens.generations import check_view


def _write_set(tmp_path, docs, vocab_size, max_tokens, eos=2):
    w = ShardWriter(tmp_path / "shards", "train", vocab_size=vocab_size, eos_id=eos, max_tokens=max_tokens,
                    rel_to=tmp_path, buffer_tokens=7)
    for d in docs:
        w.add(d)
    infos = w.close()
    manifest = {
        "format_version": 1,
        "tokenizer": {"eos_id": eos, "vocab_size": vocab_size},
        "dtype": "uint16" if vocab_size < 65536 else "uint32",
        "splits": {"train": {"tokens": sum(i.tokens for i in infos), "documents": len(docs),
                             "shards": [i.to_dict() for i in infos]}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return infos


@pytest.mark.parametrize("vocab_size", [1000, 70_000])
def test_round_trip_windows_and_documents(tmp_path, vocab_size):
    rng = np.random.default_rng(0)
    docs = [rng.integers(4, vocab_size, size=int(n)) for n in rng.integers(0, 40, size=60)]
    infos = _write_set(tmp_path, docs, vocab_size, max_tokens=100)
    assert len(infos) > 5  # several shards, so windows do cross boundaries
    assert all(i.tokens <= 100 for i in infos)
    shards = TokenShards.from_manifest(tmp_path, "train")
    assert shards.dtype == token_dtype(vocab_size)
    assert shards.dtype.itemsize == (2 if vocab_size < 65536 else 4)
    assert (tmp_path / infos[0].bin).stat().st_size == infos[0].tokens * shards.dtype.itemsize
    flat = np.concatenate([np.append(d, 2) for d in docs]).astype(np.int64)
    assert shards.num_tokens == flat.size
    assert shards.num_documents == len(docs)
    assert shards.eos_id == 2 and shards.vocab_size == vocab_size
    for start in range(0, flat.size - 64, 13):
        w = shards.window(start, 64)
        assert w.dtype == np.int64
        np.testing.assert_array_equal(w, flat[start:start + 64])
    np.testing.assert_array_equal(shards.window(0, flat.size), flat)
    for i in (0, 1, 17, len(docs) - 1):
        np.testing.assert_array_equal(shards.document(i), np.append(docs[i], 2))
    check_view(shards, docs)  # documents, lengths, IndexError past the end (shared with the generation views)


def test_idx_layout_matches_contract(tmp_path):
    infos = _write_set(tmp_path, [[5, 6, 7], [], [8]], vocab_size=50, max_tokens=1000)
    assert len(infos) == 1
    idx = np.fromfile(tmp_path / infos[0].idx, dtype="<u8")
    np.testing.assert_array_equal(idx, [4, 5, 7])
    np.testing.assert_array_equal(np.fromfile(tmp_path / infos[0].bin, dtype="<u2"), [5, 6, 7, 2, 2, 8, 2])


def test_long_document_gets_its_own_shard_and_no_temp_files_remain(tmp_path):
    infos = _write_set(tmp_path, [[4] * 3, [5] * 30, [6] * 3], vocab_size=50, max_tokens=10)
    assert [i.tokens for i in infos] == [4, 31, 4]
    assert not list((tmp_path / "shards").glob("*.tmp"))


def test_out_of_range_token_is_refused(tmp_path):
    w = ShardWriter(tmp_path, "train", vocab_size=10, eos_id=2, max_tokens=100)
    with pytest.raises(PrepError, match="out of range"):
        w.add([3, 10])


def test_truncated_shard_is_reported(tmp_path):
    infos = _write_set(tmp_path, [[5, 6, 7]] * 10, vocab_size=50, max_tokens=1000)
    p = tmp_path / infos[0].bin
    p.write_bytes(p.read_bytes()[:-2])
    with pytest.raises(PrepError, match="incomplete or corrupt"):
        TokenShards.from_manifest(tmp_path / "manifest.json", "train")


def test_split_is_stable_when_data_is_added():
    ids = [f"pmid:{i}" for i in range(20_000)]
    before = {i: split_of(i, 0.01) for i in ids}
    more = ids + [f"pmcid:PMC{i}" for i in range(20_000)]
    after = {i: split_of(i, 0.01) for i in more}
    assert all(after[i] == before[i] for i in ids)  # no document moved
    n_val = sum(s == "val" for s in before.values())
    assert 120 < n_val < 280  # about 1 %
    assert all(split_of(i, 0.0) == "train" for i in ids[:100])
    assert all(split_of(i, 1.0) == "val" for i in ids[:100])


def test_add_batch_writes_the_same_shards_as_add(tmp_path):
    rng = np.random.default_rng(1)
    docs = [rng.integers(4, 500, size=int(n)) for n in rng.integers(0, 30, size=200)] + [np.full(90, 7)]
    one = ShardWriter(tmp_path / "a", "train", vocab_size=500, eos_id=2, max_tokens=64)
    for d in docs:
        one.add(d)
    many = ShardWriter(tmp_path / "b", "train", vocab_size=500, eos_id=2, max_tokens=64, buffer_tokens=50)
    lengths = np.array([d.size for d in docs])
    for lo in range(0, len(docs), 37):  # batches that do not line up with shard boundaries
        many.add_batch(np.concatenate(docs[lo:lo + 37]), lengths[lo:lo + 37])
    a, b = one.close(), many.close()
    assert len(a) > 10 and [x.sha256 for x in a] == [x.sha256 for x in b]
    assert [x.idx_sha256 for x in a] == [x.idx_sha256 for x in b]
    with pytest.raises(PrepError, match="out of range"):
        many.add_batch(np.array([1, 600]), np.array([2]))
