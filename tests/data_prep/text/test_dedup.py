"""Exact dedup + cross-source policy: same winners whatever the task split, stream or merge."""

from __future__ import annotations

import random

import numpy as np
import pytest

from common.config import ConfigError
from data_prep.document import Document
from data_prep.errors import InputFileError
from data_prep.text.dedup import (
    DROP_REASONS,
    DedupConfig,
    DedupPlan,
    KeyWriter,
    StreamDedup,
    array_drops,
    dedup_key,
    id_rank,
    merge_key_files,
    merge_keys,
    pmid_number,
    read_keys,
    text_hash,
)
from tests.data_prep.conftest import prep_config


def pubmed(n: int, text: str) -> Document:
    return Document(id=f"pmid:{n}", text=text, source="pubmed", pmid=str(n))


def pmc(n: int, text: str, pmid: int | None = None) -> Document:
    return Document(id=f"pmcid:PMC{n}", text=text, source="pmc", pmcid=f"PMC{n}",
                    pmid=str(pmid) if pmid is not None else None)


def corpus() -> list[Document]:
    """60 documents: groups of identical texts (after case/space folding) and PMC/PubMed pairs."""
    docs = []
    for i in range(1, 31):
        docs.append(pubmed(i, f"Unique abstract number {i}."))
    docs += [pubmed(100, "Same text"), pubmed(7000, "same   TEXT"), pubmed(99, "Same\ntext")]  # winner 99
    docs += [pubmed(200, "Twice"), pmc(5, "twice")]  # PMC before PubMed
    docs += [pmc(300, "Body of 300", pmid=300), pubmed(300, "Abstract of 300")]  # cross-source pair
    docs += [pmc(10, "Copy"), pmc(9, "Copy"), pmc(11, "copy")]  # pmcid:PMC9 < PMC10 numerically
    for i in range(40, 60):
        docs.append(pubmed(i, f"Unique abstract number {i - 35}."))  # duplicates of 5..24 above
    return docs


EXPECTED = {
    "pmid:100": "duplicate_text", "pmid:7000": "duplicate_text", "pmid:200": "duplicate_text",
    "pmid:300": "duplicate_of_fulltext", "pmcid:PMC10": "duplicate_text", "pmcid:PMC11": "duplicate_text",
    **{f"pmid:{i}": "duplicate_text" for i in range(40, 60)},
}


def split(docs: list[Document], tasks: int, seed: int) -> list[list[Document]]:
    docs = docs[:]
    random.Random(seed).shuffle(docs)
    return [docs[i::tasks] for i in range(tasks)]


def test_text_hash_folds_case_and_whitespace_only():
    assert text_hash("Hello  World\n\nAgain") == text_hash("hello world again")
    assert len(text_hash("x")) == 16
    assert text_hash("Hello, world") != text_hash("Hello world")


def test_id_rank_is_pmc_first_then_numeric():
    ids = ["pmid:10", "doi:10.1/x", "pmid:9", "pmcid:PMC10", "sha1:ab", "pmcid:PMC9"]
    assert sorted(ids, key=id_rank) == ["pmcid:PMC9", "pmcid:PMC10", "pmid:9", "pmid:10", "doi:10.1/x", "sha1:ab"]


@pytest.mark.parametrize("tasks", [1, 3, 7])
def test_merge_gives_the_same_winners_for_any_task_split(tasks):
    for seed in range(3):
        groups = [[dedup_key(d) for d in g] for g in split(corpus(), tasks, seed)]
        random.Random(seed).shuffle(groups)  # tasks finish in any order
        plan = merge_keys(groups)
        assert plan.drops == EXPECTED
        assert plan.winners["pmid:7000"] == "pmid:99"
        assert plan.winners["pmid:200"] == "pmcid:PMC5"
        assert plan.winners["pmcid:PMC11"] == "pmcid:PMC9"


def test_key_files_merge_like_memory_and_1_vs_3_tasks_agree(tmp_path):
    plans = []
    for tasks in (1, 3):
        paths = []
        for i, group in enumerate(split(corpus(), tasks, seed=tasks)):
            w = KeyWriter()
            for d in group:
                w.add(d)
            paths.append(tmp_path / f"t{tasks}-{i}.keys")
            w.write(paths[-1])
        plans.append(merge_key_files(paths))
    assert plans[0].drops == plans[1].drops == EXPECTED
    assert not list(tmp_path.glob("*.tmp"))
    kept = [d for d in corpus() if plans[0].check(d) is None]
    assert len({text_hash(d.text) for d in kept}) == len(kept)  # no two survivors share a text


def test_cross_source_policies():
    docs = [pmc(1, "Full text one", pmid=11), pubmed(11, "Abstract eleven"), pubmed(12, "Abstract twelve"),
            pmc(2, "Full text two")]
    keys = [[dedup_key(d) for d in docs]]
    assert merge_keys(keys, DedupConfig(cross_source="prefer_fulltext")).drops == {"pmid:11": "duplicate_of_fulltext"}
    assert merge_keys(keys, DedupConfig(cross_source="prefer_abstract")).drops == {"pmcid:PMC1": "duplicate_of_abstract"}
    assert merge_keys(keys, DedupConfig(cross_source="keep_both")).drops == {}


def test_cross_source_runs_before_exact_dedup():
    # pmid:5 would win the text group, but its PMC full text replaces it: pmid:8's copy must stay
    docs = [pmc(1, "Body", pmid=5), pubmed(5, "Shared abstract"), pubmed(8, "shared abstract")]
    plan = merge_keys([[dedup_key(d) for d in docs]])
    assert plan.drops == {"pmid:5": "duplicate_of_fulltext"}


def test_disabled_or_exact_off():
    keys = [[dedup_key(d) for d in corpus()]]
    assert merge_keys(keys, DedupConfig(enabled=False)).drops == {}
    assert merge_keys(keys, DedupConfig(exact=False)).drops == {"pmid:300": "duplicate_of_fulltext"}


def test_stream_first_seen_wins_and_matches_the_plan_in_rank_order():
    ordered = sorted(corpus(), key=lambda d: id_rank(d.id))
    fulltext = [d.pmid for d in ordered if d.source == "pmc" and d.pmid]
    s = StreamDedup(fulltext_pmids=fulltext)
    got = {d.id: r for d in ordered if (r := s.check(d)) is not None}
    assert got == EXPECTED
    assert s.counts["duplicate_of_fulltext"] == 1
    online = StreamDedup()
    assert online.check(pubmed(2, "Text")) is None
    assert online.check(pubmed(1, "text")) == "duplicate_text"  # arrived later: loses, online


def test_plan_save_load_roundtrip(tmp_path):
    plan = merge_keys([[dedup_key(d) for d in corpus()]])
    plan.save(tmp_path / "plan.tsv")
    loaded = DedupPlan.load(tmp_path / "plan.tsv")
    assert loaded.drops == plan.drops and loaded.winners == plan.winners
    assert loaded.counts() == {"duplicate_of_fulltext": 1, "duplicate_text": 25}
    (tmp_path / "bad.tsv").write_text("pmid:1\tduplicate_text\n")
    with pytest.raises(InputFileError, match="bad.tsv: line 1"):
        DedupPlan.load(tmp_path / "bad.tsv")


def test_bad_key_files_are_named(tmp_path):
    with pytest.raises(InputFileError, match="missing.keys"):
        merge_key_files([tmp_path / "missing.keys"])
    bad = tmp_path / "bad.keys"
    bad.write_text("nothex\tpmid:1\tpubmed\t1\n")
    with pytest.raises(InputFileError, match="bad.keys: line 1"):
        list(read_keys(bad))
    unsorted = tmp_path / "unsorted.keys"
    unsorted.write_text(f"{'ff' * 16}\tpmid:1\tpubmed\t1\n{'00' * 16}\tpmid:2\tpubmed\t2\n")
    with pytest.raises(InputFileError, match="out of order"):
        list(read_keys(unsorted))


def test_dedup_config_from_mapping():
    assert prep_config(dedup={"cross_source": "keep_both"}).dedup.cross_source == "keep_both"
    with pytest.raises(ConfigError) as e:
        prep_config(dedup={"cross_source": "prefer_pmc"})
    assert e.value.key == "dedup.cross_source"
    with pytest.raises(ConfigError) as e:
        prep_config(dedup={"fuzzy": True})
    assert e.value.key == "dedup.fuzzy"


def array_plan(docs: list[Document], cfg: DedupConfig | None = None) -> dict[str, str]:
    """`array_drops` (the pipeline's merge) on `docs`, as id -> reason like `DedupPlan.drops`."""
    sources = sorted({d.source for d in docs})
    hashes = np.array([np.frombuffer(text_hash(d.text), dtype=">u8") for d in docs], dtype=np.uint64).reshape(-1, 2)
    codes = np.array([sources.index(d.source) for d in docs])
    pmids = np.array([pmid_number(d.pmid) if pmid_number(d.pmid) is not None else -1 for d in docs], dtype=np.int64)
    drops = array_drops(hashes, sources, codes, pmids, lambda which: [docs[i].id for i in which], cfg)
    return {docs[i].id: DROP_REASONS[c] for i, c in enumerate(drops) if c}


@pytest.mark.parametrize("seed", range(4))
def test_array_plan_equals_the_key_merge_in_any_order(seed):
    docs = corpus()
    random.Random(seed).shuffle(docs)  # the order must not matter: the rank decides
    assert array_plan(docs) == EXPECTED
    for cfg in (DedupConfig(cross_source="prefer_abstract"), DedupConfig(cross_source="keep_both"),
                DedupConfig(exact=False), DedupConfig(enabled=False)):
        assert array_plan(docs, cfg) == merge_keys([[dedup_key(d) for d in docs]], cfg).drops


def test_array_plan_cross_source_before_exact_and_random_corpora():
    docs = [pmc(1, "Body", pmid=5), pubmed(5, "Shared abstract"), pubmed(8, "shared abstract")]
    assert array_plan(docs) == {"pmid:5": "duplicate_of_fulltext"}
    rng = random.Random(7)  # many small texts: big groups, PMC/PubMed pairs, documents without PMIDs
    docs = [pubmed(n, f"text {rng.randrange(40)}") if rng.random() < 0.6 else
            pmc(n, f"TEXT  {rng.randrange(40)}", pmid=rng.choice([None, rng.randrange(1, 400)])) for n in range(1, 400)]
    assert array_plan(docs) == merge_keys([[dedup_key(d) for d in docs]]).drops
    assert array_plan([]) == {}
