"""`limit=N` draws a stratified, seeded subset (issue 11): PubMedQA's test file is ordered by label,
so its first 40 items are all "yes"."""

from __future__ import annotations

from collections import Counter

import tasks
from eval.sampling import smoke_subset
from tests.conftest import shared_path


def _pubmedqa():
    task = tasks.get("pubmedqa")
    return task.test_set(task.paths(shared_path("pubmedqa").parent))


def test_first_items_of_the_real_test_file_are_one_class():
    bench = _pubmedqa()
    assert {bench.gold[i] for i in bench.ids()[:40]} == {"yes"}  # why the first N is no smoke subset


def test_limit_is_stratified_seeded_and_in_file_order():
    bench = _pubmedqa()
    ids = bench.ids()
    sub = smoke_subset(bench, ids, 40, seed=0)
    assert len(sub) == 40 and len(set(sub)) == 40
    whole, part = Counter(bench.gold[i] for i in ids), Counter(bench.gold[i] for i in sub)
    assert set(part) == set(whole) == {"yes", "no", "maybe"}
    for label, n in whole.items():  # each class within one item of its share
        assert abs(part[label] - 40 * n / len(ids)) < 1
    assert sub == [i for i in ids if i in set(sub)]  # file order
    assert smoke_subset(bench, ids, 40, seed=0) == sub and smoke_subset(bench, ids, 40, seed=1) != sub
    assert smoke_subset(bench, ids, 10_000, seed=0) == ids


def test_unlabelled_tasks_get_a_seeded_random_sample():
    class Items:
        items = {str(i): {"text": "t"} for i in range(100)}

    ids = list(Items.items)
    sub = smoke_subset(Items(), ids, 10, seed=3)
    assert len(sub) == 10 and sub != ids[:10] and sub == smoke_subset(Items(), ids, 10, seed=3)
