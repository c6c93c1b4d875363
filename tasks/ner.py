"""Entity recognition as generation, shared by the NER tasks (bc5cdr_ner.py, ncbi_disease.py).

Source `{title} {abstract}` -> target: one section per entity type of the task, in the task's
fixed order, each `<plural>: <mention>; <mention>.` or `<plural>: none.`, e.g.

    chemicals: famotidine; histamine. diseases: delirium; ulcers.
    diseases: none.

Mentions are written normalized (`norm`: lower-cased, whitespace collapsed), each distinct one
once, in order of first occurrence in the source. Parsing (`parse`) finds the section headers
anywhere in the text, so a prefix before the first header is ignored; it never raises: a text
without any header of the task is `failed`, one lacking some header is `incomplete`.

Scoring (`NERTest.score`): per document, the set of (type, norm(mention)) against the gold set;
micro precision / recall / F1 over all documents, overall and per type. A test document without
a prediction counts as an empty prediction (`counts.missing`). Predictions are generated text
(`{"id", "prediction"}`) or structured (`{"id", "entities": [{"type", "text"}]}`).

Test files are PubTator (`PMID|t|`, `PMID|a|`, mention lines `PMID<TAB>start<TAB>end<TAB>text<TAB>type...`),
read from a plain file or from a member of a tar archive: a layout path that runs through an archive
(`corpus/raw/x.tar.gz/<member>`) reads that member.
"""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.base import DataFileError, Example, Score, Task, TestSet, align
from tasks.metrics import micro_counts

NONE = "none"  # the section text of a type without mentions
SEP = "; "  # between mentions (a mention containing "; " splits: 4 NCBI train mentions, no test mention)
_ARCHIVES = (".tar.gz", ".tgz", ".tar")


def norm(mention: str) -> str:
    """The compared form of a mention: lower-cased, every whitespace run one space, stripped."""
    return " ".join(mention.lower().split())


# ----------------------------------------------------------------------------- target form
def render(entities: Iterable[tuple[str, str]], types: tuple[str, ...]) -> str:
    """[(type, mention)] -> the target sentence (distinct normalized mentions, in the given order)."""
    by_type: dict[str, list[str]] = {t: [] for t in types}
    for etype, mention in entities:
        m = norm(mention)
        if etype in by_type and m and m not in by_type[etype]:
            by_type[etype].append(m)
    return " ".join(f"{t}s: {SEP.join(ms) if ms else NONE}." for t, ms in by_type.items())


@dataclass(frozen=True)
class Parsed:
    entities: set[tuple[str, str]]  # (type, normalized mention)
    found: tuple[str, ...]  # the types whose header was found

    @property
    def failed(self) -> bool:
        return not self.found


def parse(text: str, types: tuple[str, ...]) -> Parsed:
    """The target form read back; never raises. A section runs from its header to the next header
    (or the end); one final '.' is dropped, the rest is split on ';'."""
    header = re.compile(r"(?:^|(?<=\s))(" + "|".join(re.escape(t) for t in types) + r")s:", re.IGNORECASE)
    text = " ".join(str(text).split())
    marks = list(header.finditer(text))
    entities: set[tuple[str, str]] = set()
    found: list[str] = []
    for i, m in enumerate(marks):
        etype = m.group(1).lower()
        if etype in found:  # a repeated section (a looping generation): the first one counts
            continue
        found.append(etype)
        body = text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
        body = body[:-1] if body.endswith(".") else body
        for piece in body.split(";"):
            mention = norm(piece)
            if mention and mention != NONE:
                entities.add((etype, mention))
    return Parsed(entities, tuple(found))


# ----------------------------------------------------------------------------- files
def _archive_split(path: Path) -> tuple[Path, str] | None:
    """(archive, member) when `path` runs through a tar archive that exists."""
    for parent in path.parents:
        if parent.name.endswith(_ARCHIVES) and parent.is_file():
            return parent, PurePosixPath(*path.relative_to(parent).parts).as_posix()
    return None


def read_text(path: Path, what: str) -> str:
    """A text file, or a member of a tar archive named as `<archive>/<member>`."""
    path = Path(path)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    found = _archive_split(path)
    if found is None:
        raise DataFileError(path, f"missing {what}; set task.bench_dir=<folder> (or BIOGPT_EVAL_DATA) "
                                  "to the folder holding biogpt/ and corpus/, or task.files.<role>=<file>")
    archive, member = found
    try:
        with tarfile.open(archive) as tar:
            f = tar.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read().decode("utf-8")
    except KeyError:
        raise DataFileError(archive, f"has no member {member!r} ({what}); restore the original archive") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataFileError(archive, f"cannot be read as a tar archive ({e}); restore the original") from None


def read_pubtator(path: Path, type_of: Mapping[str, str], what: str) -> dict[str, dict]:
    """{pmid: {title, abstract, entities: [(type, mention)]}} in file order; `type_of` maps the
    file's mention types to the task's (mentions of other types are dropped)."""
    docs: dict[str, dict] = {}
    current = None  # the document being read; None while skipping a repeated PMID
    for n, line in enumerate(read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        head, bar, rest = line.partition("|")
        if bar and head.isdigit() and rest[:2] in ("t|", "a|"):
            if rest[0] == "t":
                # NCBI-disease train lists one PMID twice: the first copy is kept, mentions included.
                current = None if head in docs else head
                if current is not None:
                    docs[head] = {"title": rest[2:].strip(), "abstract": "", "entities": []}
            elif current == head:
                docs[head]["abstract"] = rest[2:].strip()
            continue
        cols = line.split("\t")
        if len(cols) >= 5 and cols[0] in docs and cols[1].isdigit():
            if cols[4] in type_of and cols[0] == current:
                docs[cols[0]]["entities"].append((type_of[cols[4]], cols[3]))
        elif not (len(cols) >= 4 and cols[0] in docs):  # 4 columns: a relation line (BC5CDR's CID)
            raise DataFileError(f"{path}:{n}", "not a PubTator title, abstract, mention or relation line; "
                                               "restore the original file")
    if not docs:
        raise DataFileError(path, f"no 'PMID|t|' lines: not a PubTator file ({what})")
    return docs


def ordered(entities: Iterable[tuple[str, str]], text: str) -> list[tuple[str, str]]:
    """Entities by the first occurrence of their normalized mention in the normalized text."""
    low = norm(text)
    ents = list(entities)
    return sorted(ents, key=lambda e: (low.find(norm(e[1])) % (len(low) + 1), ents.index(e)))


# ----------------------------------------------------------------------------- the task
class NERTask(Task):
    """A generative NER task: subclasses set `name`, `layout`, `types` and `read`."""

    types: tuple[str, ...] = ()  # singular type names, in target order ("chemical", "disease")

    def entities(self, item: dict) -> list[tuple[str, str]]:
        return item["entities"]

    def source(self, key: str, item: dict, path: Path) -> str:
        return f"{item.get('title', '').strip()} {item.get('abstract', '').strip()}".strip()

    def example(self, key: str, item: dict, path: Path) -> Example:
        src = self.source(key, item, path)
        return Example(key, src, render(ordered(self.entities(item), src), self.types))

    def biogpt_source(self, key: str, item: dict) -> str:
        return self.source(key, item, Path(f"<{self.name}>")).lower()

    def test_set(self, paths: Mapping[str, Path]) -> NERTest:
        return NERTest(self, self.read(paths["test"]), paths["test"])


def gold_set(task: NERTask, item: dict) -> set[tuple[str, str]]:
    return {(t, norm(m)) for t, m in task.entities(item) if t in task.types and norm(m)}


class NERTest(TestSet):
    task: NERTask

    def pmids(self) -> set[str]:
        return {k for k in self.items if k.isdigit()}

    def render(self, key: str) -> str:
        item = self.items[key]
        return render(ordered(self.task.entities(item), self.task.source(key, item, self.path)), self.task.types)

    def structured(self, key: str) -> list[dict]:
        """The gold as a structured prediction (`entities` of a prediction-file line)."""
        return [{"type": t, "text": m} for t, m in self.task.entities(self.items[key])]

    def read_prediction(self, record: dict) -> Any:
        """A prediction-file line: generated text (`prediction`) or `entities` [{type, text}]."""
        if "entities" in record:
            ents = record["entities"]
            if not isinstance(ents, list) or not all(
                    isinstance(e, dict) and isinstance(e.get("type"), str) and isinstance(e.get("text"), str)
                    for e in ents):
                raise ValueError('"entities" must be a list of {"type": "...", "text": "..."} objects')
            unknown = sorted({e["type"] for e in ents} - set(self.task.types))
            if unknown:
                raise ValueError(f"entity types {unknown} are not types of {self.name} ({', '.join(self.task.types)})")
            return [(e["type"], e["text"]) for e in ents]
        return super().read_prediction(record)

    def score(self, predictions: Mapping[str, Any], ids: list[str] | None = None,
              source: str = "predictions") -> Score:
        """`predictions`: id -> generated text, or id -> [(type, mention)] (structured)."""
        ids = self.ids() if ids is None else ids
        al = align(self.name, dict(predictions), ids, set(self.items), source)
        gold_all, pred_all, items = [], [], []
        failed = incomplete = 0
        for key, pred in zip(ids, al.texts, strict=True):
            if pred is None:
                got: set[tuple[str, str]] = set()
            elif isinstance(pred, str):
                parsed = parse(pred, self.task.types)
                failed += parsed.failed
                incomplete += not parsed.failed and len(parsed.found) < len(self.task.types)
                got = parsed.entities
            else:
                got = {(t, norm(m)) for t, m in pred if norm(m)}
            gold = gold_set(self.task, self.items[key])
            gold_all += [(key, *g) for g in gold]
            pred_all += [(key, *p) for p in got]
            items.append({"id": key, "gold": sorted(gold), "extracted": sorted(got),
                          "missing": pred is None})
        overall = micro_counts(gold_all, pred_all)
        per_type = {}
        for t in self.task.types:
            c = micro_counts([g for g in gold_all if g[1] == t], [p for p in pred_all if p[1] == t])
            per_type[t] = c.as_dict()
        return Score(self.name, {"precision": overall.precision, "recall": overall.recall, "f1": overall.f1},
                     {"evaluated": len(ids), "missing": al.missing, "unknown_ids": al.unknown, "failed": failed,
                      "incomplete": incomplete, "tp": overall.tp, "n_pred": overall.n_pred, "n_gold": overall.n_gold},
                     items, {"per_type": per_type,
                             "missing_ids": [k for k, p in zip(ids, al.texts, strict=True) if p is None]})


# ----------------------------------------------------------------------------- dictionary baseline
def dictionary(task: NERTask, train: Path) -> dict[str, str]:
    """Every normalized mention of the training file -> the type it is most often annotated with."""
    votes: dict[str, Counter] = {}
    for item in task.read(train).values():
        for t, m in task.entities(item):
            if t in task.types and norm(m):
                votes.setdefault(norm(m), Counter())[t] += 1
    return {m: c.most_common(1)[0][0] for m, c in votes.items()}


def dictionary_predictions(task: NERTask, paths: Mapping[str, Path]) -> dict[str, list[tuple[str, str]]]:
    """The trivial baseline: each training mention found in a test document's normalized text,
    not inside a longer word (a match is a prediction of the mention's majority type)."""
    words = dictionary(task, paths["train"])
    bench = task.test_set(paths)
    patterns = {m: re.compile(r"(?<!\w)" + re.escape(m) + r"(?!\w)") for m in words}
    out: dict[str, list[tuple[str, str]]] = {}
    for key in bench.ids():
        text = norm(task.source(key, bench.items[key], bench.path))
        out[key] = [(words[m], m) for m, p in patterns.items() if m in text and p.search(text)]
    return out


def write_dictionary_baseline(name: str, out: str | Path, bench_dir: str | Path | None = None) -> Path:
    """The baseline of task `name` as a structured prediction file (`python -m eval predictions=`)."""
    import json

    import tasks
    from common.atomic import atomic_write_text
    from tasks.config import TaskConfig, resolve_bench_dir

    task = tasks.get(name)
    if not isinstance(task, NERTask):
        raise ValueError(f"task {name!r} is not an entity recognition task")
    paths = task.paths(Path(bench_dir) if bench_dir else resolve_bench_dir(TaskConfig(name=name)))
    preds = dictionary_predictions(task, paths)
    lines = [json.dumps({"id": k, "entities": [{"type": t, "text": m} for t, m in v]}) for k, v in preds.items()]
    atomic_write_text(Path(out), "\n".join(lines) + "\n")
    return Path(out)
