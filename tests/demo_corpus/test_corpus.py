"""The generated demo corpus (demo_corpus/corpus.py) and its PubMedQA-style set (demo_corpus/pubmedqa.py).

The XML is read with lxml directly, so these tests check the files themselves, not a parser.
"""

from __future__ import annotations

import collections
import gzip
import inspect
import json
import math
import re
from pathlib import Path

import pytest
from lxml import etree
from omegaconf import OmegaConf

from common.config import ConfigError
from demo_corpus.corpus import MARKER, PMID_START, generate_demo_corpus, plan_corpus
from demo_corpus.pubmedqa import QASplits, build_items, generate_demo_pubmedqa
from tests.conftest import shared_path
from tests.data_prep.conftest import compose_prep

PARSER = etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False)
MML = "{http://www.w3.org/1998/Math/MathML}math"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def read_xml(path: Path) -> etree._Element:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return etree.fromstring(data, PARSER)


def text(el: etree._Element | None) -> str:
    return "" if el is None else "".join(el.itertext())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Path]]:
    dest = tmp_path_factory.mktemp("demo")
    return dest, generate_demo_corpus(dest)


@pytest.fixture(scope="module")
def pubmed(corpus):
    """file name -> (PubmedArticle elements, deleted PMIDs)."""
    _, files = corpus
    out = {}
    for f in files:
        if f.parent.name in ("baseline", "updatefiles"):
            root = read_xml(f)
            out[f.name] = (root.findall("PubmedArticle"), [p.text for p in root.iterfind("DeleteCitation/PMID")])
    return out


@pytest.fixture(scope="module")
def baseline_articles(pubmed):
    return [a for name, (arts, _) in sorted(pubmed.items()) if name <= "pubmed26n0003.xml.gz" for a in arts]


@pytest.fixture(scope="module")
def qa(corpus, tmp_path_factory):
    dest, _ = corpus
    paths = generate_demo_pubmedqa(tmp_path_factory.mktemp("qa"), dest)
    return {k: p for k, p in paths.items()}


def pmid_of(article: etree._Element) -> str:
    return article.findtext("MedlineCitation/PMID")


def abstract_text(article: etree._Element) -> str:
    return " ".join(text(t) for t in article.iterfind(".//Abstract/AbstractText"))


# ---------------------------------------------------------------- generation mechanics


def test_same_arguments_give_byte_identical_files(tmp_path):
    a = generate_demo_corpus(tmp_path / "a", seed=3, n_abstracts=300, n_fulltext=6)
    b = generate_demo_corpus(tmp_path / "b", seed=3, n_abstracts=300, n_fulltext=6)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    gz = [p for p in a if p.name.endswith(".gz") and p.stat().st_size > 0]
    assert gz and all(p.read_bytes()[4:8] == b"\0\0\0\0" for p in gz)  # gzip mtime 0
    c = generate_demo_corpus(tmp_path / "c", seed=4, n_abstracts=300, n_fulltext=6)
    assert a[0].read_bytes() != c[0].read_bytes()  # the seed matters


def test_rerun_is_idempotent_and_new_arguments_replace_the_old_files(tmp_path):
    first = generate_demo_corpus(tmp_path, n_abstracts=300, n_fulltext=6)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    assert generate_demo_corpus(tmp_path, n_abstracts=300, n_fulltext=6) == first
    assert {p: p.stat().st_mtime_ns for p in first} == stamps  # nothing rewritten
    first[0].write_bytes(b"edited")  # a damaged file is detected by its checksum and rewritten
    assert generate_demo_corpus(tmp_path, n_abstracts=300, n_fulltext=6)[0].read_bytes()[:2] == b"\x1f\x8b"
    smaller = generate_demo_corpus(tmp_path, n_abstracts=300, n_fulltext=4)
    assert not (tmp_path / "pmc" / "PMC9000006.nxml.gz").exists() and not (tmp_path / "pmc" / "PMC9000005.xml").exists()
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(smaller + [tmp_path / MARKER])
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("key,kwargs", [("n_abstracts", {"n_abstracts": 10}), ("n_fulltext", {"n_fulltext": -1}),
                                        ("seed", {"seed": "zero"})])
def test_bad_arguments_name_the_config_key(tmp_path, key, kwargs):
    with pytest.raises(ConfigError, match=f"source.{key}"):
        generate_demo_corpus(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_load_order_baseline_updates_fulltext_then_broken(corpus):
    dest, files = corpus
    rel = [p.relative_to(dest).as_posix() for p in files]
    assert rel[:5] == [f"pubmed/baseline/pubmed26n000{i}.xml.gz" for i in (1, 2, 3)] + \
        [f"pubmed/updatefiles/pubmed26n000{i}.xml.gz" for i in (4, 5)]
    assert [r.split("/")[0] for r in rel[5:]] == ["pmc"] * 40 + ["z_broken"] * 5
    assert sorted(rel, key=lambda r: r.startswith("z_broken/")) == rel and max(rel).startswith("z_broken/")


def test_shipped_config_matches_the_generator_defaults():
    # `source=demo` as python -m data_prep composes it: its values are the generator's own defaults.
    cfg = OmegaConf.to_container(compose_prep(["source=demo", "out_dir=unused"]).source)
    defaults = {k: p.default for k, p in inspect.signature(generate_demo_corpus).parameters.items() if k != "dest"}
    assert cfg == {"name": "demo", **defaults}
    qa_defaults = inspect.signature(generate_demo_pubmedqa).parameters
    assert (qa_defaults["corpus"].default, qa_defaults["n_abstracts"].default, qa_defaults["n_fulltext"].default) == (
        defaults["seed"], defaults["n_abstracts"], defaults["n_fulltext"])


# ---------------------------------------------------------------- PubMed files


def test_pubmed_files_are_ncbi_baseline_format(corpus, pubmed, baseline_articles):
    dest, files = corpus
    head = gzip.decompress(files[0].read_bytes())[:300].decode()
    assert head.startswith('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN"')
    assert 2800 <= len(baseline_articles) <= 3000
    pmids = [int(pmid_of(a)) for a in baseline_articles]
    assert len(set(pmids)) == len(pmids) and min(pmids) == PMID_START and max(pmids) < PMID_START + 10_000
    a = baseline_articles[0]
    for path in ("MedlineCitation/Article/Journal/JournalIssue/PubDate/Year", "MedlineCitation/Article/ArticleTitle",
                 "MedlineCitation/Article/Language", "MedlineCitation/MedlineJournalInfo/MedlineTA",
                 "PubmedData/ArticleIdList/ArticleId"):
        assert a.find(path) is not None, path
    assert a.find("MedlineCitation/PMID").get("Version") == "1"


def test_pubmed_records_cover_the_features_the_parser_must_handle(baseline_articles):
    arts = baseline_articles
    categories = collections.Counter(t.get("NlmCategory") for a in arts for t in a.iterfind(".//AbstractText[@Label]"))
    assert {"BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"} <= set(categories)
    unstructured = [a for a in arts if a.find(".//AbstractText") is not None and a.find(".//AbstractText[@Label]") is None]
    no_abstract = [a for a in arts if a.find(".//Abstract") is None]
    assert len(unstructured) > 500 and 50 < len(no_abstract) < 300
    inline = collections.Counter(el.tag for a in arts for t in a.iter("AbstractText", "ArticleTitle") for el in t.iter("i", "sup", "sub"))
    assert all(inline[tag] > 10 for tag in ("i", "sup", "sub")), inline
    assert sum(1 for a in arts if a.find(f".//AbstractText//{MML}") is not None) >= 3
    assert sum(1 for a in arts if a.find(".//MeshHeadingList/MeshHeading/DescriptorName[@UI]") is not None) > 1000
    types = collections.Counter(p.text for a in arts for p in a.iter("PublicationType"))
    assert types["Retracted Publication"] >= 2 and types["Retraction of Publication"] == types["Retracted Publication"]
    assert types["Published Erratum"] >= 2 and types["Review"] > 100
    refs = {c.get("RefType") for a in arts for c in a.iter("CommentsCorrections")}
    assert {"RetractionIn", "RetractionOf", "ErratumFor", "ErratumIn"} <= refs
    journals = {a.findtext(".//Journal/Title") for a in arts}
    years = {a.findtext(".//PubDate/Year") for a in arts}
    assert len(journals) >= 9 and len(years) >= 10


def test_non_english_records_have_vernacular_title_and_native_abstract(baseline_articles):
    langs = collections.Counter(a.findtext(".//Language") for a in baseline_articles)
    assert langs["eng"] > 0.9 * len(baseline_articles) and all(langs[k] >= 5 for k in ("fre", "ger", "spa"))
    native = {"fre": "Résultats", "ger": "Ergebnisse", "spa": "Resultados"}
    for a in baseline_articles:
        lang = a.findtext(".//Language")
        if lang != "eng":
            assert a.findtext(".//VernacularTitle")
            assert re.fullmatch(r"\[.+\]\.", a.findtext(".//ArticleTitle"))
            assert native[lang] in abstract_text(a)


def test_text_uses_realistic_biomedical_vocabulary(baseline_articles):
    body = "\n".join(text(a.find(".//ArticleTitle")) + " " + abstract_text(a) for a in baseline_articles)
    for pattern in (r"\b\w+tinib\b", r"\b\w+mab\b", r"\b\w+azole\b", r"\b\w+pril\b", r"\b\w+statin\b",
                    r"\d-\(\d-\w+phenyl\)-N-\w+acetamide", r"\bEGFR\b", r"\bBRCA1\b", r"TNF-α", r"IL-1β", r"NF-κB",
                    r"\d+(\.\d+)? mg/kg", r"IC50 = \d+(\.\d+)? µM", r"IC50 of \w", r"p < 0\.01", r"p = 0\.\d+",
                    r"95% CI \d\.\d\d–\d\.\d\d", r" ± ", r"≤ \d", r"≥ 18", r"HR = 0\.\d\d", r"OR = \d\.\d\d"):
        assert re.search(pattern, body), pattern


def test_update_files_add_revise_and_delete(pubmed, baseline_articles):
    base = {pmid_of(a): a for a in baseline_articles}
    u1, del1 = pubmed["pubmed26n0004.xml.gz"]
    u2, del2 = pubmed["pubmed26n0005.xml.gz"]
    new1 = [a for a in u1 if pmid_of(a) not in base]
    new2 = [a for a in u2 if pmid_of(a) not in base]
    assert len(new1) >= 50 and len(new2) >= 50
    assert min(int(pmid_of(a)) for a in new1) > max(int(p) for p in base)  # numbering continues
    revised = [a for a in u1 + u2 if pmid_of(a) in base]
    assert len(revised) >= 20
    for a in revised:  # a corrected value: same PMID, different abstract
        assert abstract_text(a) != abstract_text(base[pmid_of(a)])
    assert any(a.find("MedlineCitation/PMID").get("Version") == "2" for a in revised)
    assert {pmid_of(a) for a in u1 if pmid_of(a) in base} & {pmid_of(a) for a in u2}  # revised twice: later file wins
    assert len(del1) >= 10 and set(del1 + del2[:-1]) <= set(base)
    assert del2[-1] == pmid_of(new1[0])  # the second update deletes a record the first one added
    assert not set(del1 + del2) & {pmid_of(a) for a in revised}


def test_exact_duplicate_abstracts_under_different_pmids(baseline_articles):
    seen: dict[str, list[str]] = collections.defaultdict(list)
    for a in baseline_articles:
        if a.find(".//Abstract") is not None and a.findtext(".//PublicationType") == "Journal Article":
            seen[text(a.find(".//ArticleTitle")) + "\n" + abstract_text(a)].append(pmid_of(a))
    dups = [p for p in seen.values() if len(p) > 1]
    assert len(dups) == 2 and all(len(set(p)) == 2 for p in dups)


# ---------------------------------------------------------------- JATS files


def test_jats_articles_carry_ids_licences_and_the_parts_the_parser_excludes(corpus, baseline_articles):
    _, files = corpus
    jats = [f for f in files if f.parent.name == "pmc"]
    assert len(jats) == 40 and sum(f.name.endswith(".nxml.gz") for f in jats) >= 10
    raw = jats[0].read_bytes()
    assert b'"-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD with MathML3 v1.3 20210610//EN"' in raw
    base_titles = {pmid_of(a): text(a.find(".//ArticleTitle")) for a in baseline_articles}
    licences, overlap, no_pmid = collections.Counter(), 0, 0
    for f in jats:
        art = read_xml(f)
        assert art.tag == "article" and art.get("dtd-version") == "1.3"
        meta = art.find("front/article-meta")
        ids = {i.get("pub-id-type"): i.text for i in meta.iterfind("article-id")}
        assert ids["pmc"] == f.name.split(".")[0] and ids["doi"].startswith("10.5555/")
        if "pmid" not in ids:
            no_pmid += 1
        elif ids["pmid"] in base_titles:
            overlap += 1
            assert text(meta.find("title-group/article-title")) == base_titles[ids["pmid"]]
        lic = meta.find("permissions/license")
        licences[None if lic is None else (lic.get("license-type"), lic.get(XLINK_HREF))] += 1
        for path in ("abstract", "../../body/sec/title", "../../body//table-wrap", "../../body//fig",
                     "../../back/ref-list/ref", "../../back/fn-group/fn"):
            assert meta.find(path) is not None, (f.name, path)
    assert overlap == 20 and no_pmid == 1 and licences[None] == 1
    hrefs = {href for key in licences if key for _, href in [key]}
    assert "https://creativecommons.org/licenses/by/4.0/" in hrefs and "https://creativecommons.org/publicdomain/zero/1.0/" in hrefs
    assert sum("-nc" in h for h in hrefs) >= 2
    assert all(key is None or key[0] == "open-access" for key in licences)
    letters = [f for f in jats if read_xml(f).find("sub-article[@article-type='decision-letter']") is not None]
    assert len(letters) == 10


# ---------------------------------------------------------------- broken files


def test_broken_files_are_really_broken(corpus):
    _, files = corpus
    broken = {f.name: f for f in files if f.parent.name == "z_broken"}
    assert set(broken) == {"pubmed26n0997.xml.gz", "pubmed26n0998.xml", "pubmed26n0999.xml.gz", "PMC9999998.xml", "PMC9999999.nxml"}
    with pytest.raises(EOFError):
        gzip.decompress(broken["pubmed26n0997.xml.gz"].read_bytes())
    for name in ("pubmed26n0998.xml", "PMC9999999.nxml"):
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(broken[name].read_bytes(), PARSER)
    assert broken["pubmed26n0999.xml.gz"].stat().st_size == 0
    assert b"<!ENTITY" in broken["PMC9999998.xml"].read_bytes()


# ---------------------------------------------------------------- learnable text


def test_text_size_and_structure_suit_a_tiny_model(corpus, baseline_articles):
    words: list[str] = []
    chars = 0
    for a in baseline_articles:
        t = text(a.find(".//ArticleTitle")) + " " + abstract_text(a)
        chars += len(t)
        words += re.findall(r"\w+|[^\w\s]", t.lower())
    assert 2_000_000 < chars < 4_000_000
    uni = collections.Counter(words)
    n = len(words)
    h1 = -sum(c / n * math.log2(c / n) for c in uni.values())
    pairs = collections.Counter(zip(words, words[1:], strict=False))
    h2 = -sum(c / (n - 1) * math.log2(c / uni[a]) for (a, _), c in pairs.items())  # H(w_t | w_t-1)
    assert 7.0 < h1 < 10.5, h1  # a real vocabulary, not a handful of words
    assert h2 < h1 - 4.0, (h1, h2)  # and strong sequential structure to learn


# ---------------------------------------------------------------- PubMedQA-style set


def test_qa_layout_and_splits_as_pubmedqa(qa):
    sets = {k: json.loads(qa[k].read_text()) for k in ("all", "train", "dev", "test", "ground_truth")}
    assert [len(sets[k]) for k in ("train", "dev", "test")] == [600, 100, 200]
    assert set(sets["all"]) == set(sets["train"]) | set(sets["dev"]) | set(sets["test"]) and len(sets["all"]) == 900
    assert not set(sets["test"]) & (set(sets["train"]) | set(sets["dev"]))
    assert sets["ground_truth"] == {p: it["final_decision"] for p, it in sets["test"].items()}
    assert qa["test_pmids"].read_text().split() == sorted(sets["test"], key=int)
    assert qa["trainval_pmids"].read_text().split() == sorted(set(sets["train"]) | set(sets["dev"]), key=int)
    keys = ["QUESTION", "CONTEXTS", "LABELS", "MESHES", "YEAR", "reasoning_required_pred", "reasoning_free_pred",
            "final_decision", "LONG_ANSWER"]
    for item in sets["all"].values():
        assert list(item) == keys and len(item["CONTEXTS"]) == len(item["LABELS"]) == 3
        assert item["QUESTION"].endswith("?") and item["LONG_ANSWER"] and item["YEAR"].isdigit()
    labels = collections.Counter(it["final_decision"] for it in sets["all"].values())
    assert set(labels) == {"yes", "no", "maybe"} and all(0.15 < c / 900 < 0.5 for c in labels.values()), labels


def test_qa_item_keys_match_the_real_pubmedqa_file(qa):
    real = json.loads(shared_path("pubmedqa", "pqal_fold0_dev_set.json").read_text())
    ours = json.loads(qa["dev"].read_text())
    assert list(next(iter(ours.values()))) == list(next(iter(real.values())))
    assert qa["ground_truth"].read_text().startswith("{\n    \"")  # indent 4, as upstream


def _read_answer(item: dict) -> str:
    """A rule-based reader: the answer from the RESULTS context alone (it must be stated there)."""
    results = item["CONTEXTS"][-1]
    q = item["QUESTION"]
    if re.search(r"non-significant trend|inconclusive|mixed|not consistent", results):
        return "maybe"
    if re.search(r"no significant|did not differ significantly|was not associated|No significant association", results):
        return "no"
    if q.startswith("Is ") and " lower risk" in q:
        return "yes" if "significantly lower risk" in results else "no"
    if q.startswith("Is the "):
        return "yes" if "significantly associated" in results else "no"
    verb = re.match(r"Does .+? (reduce|increase) ", q).group(1)
    wanted = {"reduce": ("reduced", "lower"), "increase": ("increased", "higher")}[verb]
    found = re.search(r"significantly (reduced|increased|higher|lower)", results).group(1)
    return "yes" if found in wanted else "no"


def test_qa_answers_are_stated_in_the_contexts(qa):
    items = json.loads(qa["all"].read_text())
    assert all(_read_answer(it) == it["final_decision"] for it in items.values())
    for it in items.values():  # the conclusion (the answer in words) is not part of the context
        assert it["LONG_ANSWER"] not in " ".join(it["CONTEXTS"])


def test_qa_answers_cannot_be_guessed_from_the_question(qa):
    train = json.loads(qa["train"].read_text())
    test = json.loads(qa["test"].read_text())

    def words(q: str) -> set[str]:
        return set(re.findall(r"\w+", q.lower()))

    # Naive Bayes on question words: trained on train, scored on test; it should do no better than
    # always answering the majority label (a leak in the question wording would show up here).
    prior = collections.Counter(it["final_decision"] for it in train.values())
    counts = {y: collections.Counter() for y in prior}
    for it in train.values():
        counts[it["final_decision"]].update(words(it["QUESTION"]))
    vocab = set().union(*counts.values())

    def predict(q: str) -> str:
        def score(y: str) -> float:
            total = sum(counts[y].values()) + len(vocab)
            return math.log(prior[y]) + sum(math.log((counts[y][w] + 1) / total) for w in words(q) if w in vocab)
        return max(prior, key=score)

    acc = sum(predict(it["QUESTION"]) == it["final_decision"] for it in test.values()) / len(test)
    majority = max(collections.Counter(it["final_decision"] for it in test.values()).values()) / len(test)
    assert acc < majority + 0.08, (acc, majority)


def test_qa_pmids_are_abstracts_of_the_corpus(qa, pubmed, baseline_articles):
    items = json.loads(qa["all"].read_text())
    base = {pmid_of(a): a for a in baseline_articles}
    touched = {pmid_of(a) for name in ("pubmed26n0004.xml.gz", "pubmed26n0005.xml.gz") for a in pubmed[name][0]}
    deleted = {p for _, dels in pubmed.values() for p in dels}
    assert set(items) <= set(base) and not set(items) & (touched | deleted)
    for pmid, it in list(items.items())[:50]:  # contexts are the record's own sections
        secs = [text(t) for t in base[pmid].iterfind(".//AbstractText")]
        assert secs[:3] == it["CONTEXTS"] and secs[3] == it["LONG_ANSWER"]
        assert it["QUESTION"].split(" ")[1].lower() in secs[0].lower()


def test_qa_from_seed_equals_qa_from_corpus_dir(qa, tmp_path):
    paths = generate_demo_pubmedqa(tmp_path, 0)
    assert all(paths[k].read_bytes() == qa[k].read_bytes() for k in qa)
    mtime = paths["all"].stat().st_mtime_ns
    generate_demo_pubmedqa(tmp_path, 0)
    assert paths["all"].stat().st_mtime_ns == mtime  # idempotent


def test_qa_asks_for_more_items_than_the_corpus_has():
    with pytest.raises(ConfigError, match="raise n_abstracts"):
        build_items(0, 300, 6, QASplits())
    assert len(plan_corpus(0, 300, 6).qa_candidates) > 50


def test_qa_needs_a_generated_corpus(tmp_path):
    with pytest.raises(ConfigError, match="run generate_demo_corpus"):
        generate_demo_pubmedqa(tmp_path / "qa", tmp_path / "nothing-here")


# ---------------------------------------------------------------- with the project's parsers


def test_whole_corpus_parses_with_the_project_parsers(corpus):
    parse_pubmed = pytest.importorskip("data_prep.parse.pubmed")
    parse_jats = pytest.importorskip("data_prep.parse.jats")
    from data_prep.document import Deletion, Document
    from data_prep.errors import InputFileError

    _, files = corpus
    docs: list[Document] = []
    deletions: list[Deletion] = []
    quarantined = []
    for order, f in enumerate(files):
        reader = parse_pubmed.iter_pubmed(f, order) if "pubmed" in f.parts[-3:-1] or f.name.startswith("pubmed") \
            else parse_jats.iter_jats(f, file_order=order)
        try:
            for d in reader:
                (deletions if isinstance(d, Deletion) else docs).append(d)
        except InputFileError as e:
            quarantined.append(Path(e.path).name)
    assert sorted(quarantined) == sorted(f.name for f in files if f.parent.name == "z_broken")
    assert len(deletions) == 31 and {d.file_order for d in deletions} == {3, 4}
    by_pmid = collections.defaultdict(list)
    for d in docs:
        if d.source == "pubmed" and "z_broken" not in d.file:  # a malformed file yields records before its error
            by_pmid[d.pmid].append(d)
    revised = [v for v in by_pmid.values() if len(v) > 1]
    same = [(d.pmid, d.file, d.source) for v in revised if v[0].text == v[-1].text for d in v]
    assert len(revised) >= 20 and not same, same[:6]
    assert any(d.version == 2 for v in revised for d in v)
    pmc = [d for d in docs if d.source == "pmc"]
    assert len(pmc) == 40 and sum(d.pmid in by_pmid for d in pmc) == 20
    assert {d.language for d in docs if d.source == "pubmed"} >= {"eng", "fre", "ger", "spa"}
