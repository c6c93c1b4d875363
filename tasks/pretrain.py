"""Next-token pretraining on data_prep's token shards, and its evaluation: perplexity and bits per byte.

Files: not the benchmark folder but a data_prep out_dir (`task.data_dir`): `manifest.json`, which
names the tokenizer and the `train` / `val` shards (docs/architecture.md). Training reads packed
windows of `seq_len + 1` tokens; eval cuts a split into consecutive, non-overlapping windows of
`block_size + 1` tokens and predicts every token after a window's first once.

Text mode (`python -m eval task=perplexity task.texts=<file>`): JSON lines `{"id": str, "text": str,
"spans"?: [[start, end], ...]}`, optionally gzipped, read by `read_texts`; offsets are Python `str`
indices (Unicode code points, not bytes), half-open. eval/perplexity.py turns per-token losses into
bits per byte over the given spans, rare words (`rare_word_spans`) and numeric expressions
(`NUMERIC_PATTERNS`); spans of one kind are merged per text (`merge`), so an overlap counts once.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.base import DataFileError, Kind, Mode, Task

MANIFEST = "manifest.json"


def perplexity_metrics(nll: float, tokens: int, nbytes: int) -> dict[str, float]:
    """From the summed NLL (nats) of `tokens` predicted tokens whose decoded text is `nbytes` UTF-8 bytes.
    bits_per_byte does not depend on the tokenizer, so models with different vocabularies compare."""
    return {"perplexity": math.exp(nll / tokens), "bits_per_byte": nll / math.log(2) / max(nbytes, 1),
            "nll_per_token": nll / tokens}


class Pretrain(Task):
    name = "pretrain"
    kind = Kind.LANGUAGE_MODEL
    modes = (Mode.score,)


TASK = Pretrain()


# -- text mode: texts with character spans ----------------------------------------------------------
Span = tuple[int, int]


@dataclass(frozen=True)
class TextItem:
    id: str
    text: str
    spans: tuple[Span, ...] | None  # None: the line had no "spans" key (contributes nothing to span metrics)


def _opener(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else open(path, encoding="utf-8")


def read_texts(path: str | Path) -> list[TextItem]:
    """All items of a JSONL(.gz) file. A bad line raises DataFileError naming `file:line` and the fix."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "does not exist; pass task.texts=<JSON lines of {\"id\", \"text\", \"spans\"?}>")
    items: list[TextItem] = []
    seen: set[str] = set()
    try:
        with _opener(path) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    item = _item(line, f"{path}:{n}")
                    if item.id in seen:
                        raise DataFileError(f"{path}:{n}", f"duplicate id {item.id!r}; ids must be unique")
                    seen.add(item.id)
                    items.append(item)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataFileError(path, f"unreadable ({e}); pass a UTF-8 JSONL file, optionally .gz") from None
    if not items:
        raise DataFileError(path, "holds no texts; one JSON object per line")
    return items


def _item(line: str, where: str) -> TextItem:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataFileError(where, f"not JSON ({e.msg}); one object per line") from None
    if not isinstance(obj, dict):
        raise DataFileError(where, "expected a JSON object {\"id\", \"text\", \"spans\"?}")
    text, key = obj.get("text"), obj.get("id")
    if not isinstance(text, str) or not text:
        raise DataFileError(where, "\"text\" must be a non-empty string")
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise DataFileError(where, "\"id\" must be a string (or an integer)")
    if "spans" not in obj:
        return TextItem(str(key), text, None)
    raw = obj["spans"]
    if not isinstance(raw, list):
        raise DataFileError(where, "\"spans\" must be a list of [start, end] character offsets")
    spans = []
    for s in raw:
        if (not isinstance(s, list) or len(s) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in s)
                or not 0 <= s[0] < s[1] <= len(text)):
            raise DataFileError(where, f"span {s!r} is not [start, end] with 0 <= start < end <= {len(text)} "
                                       "(character offsets into text, not bytes)")
        spans.append((s[0], s[1]))
    return TextItem(str(key), text, tuple(spans))


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, with overlapping spans joined (adjacent ones stay apart; they count the same)."""
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if out and s < out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


# -- numeric expressions ------------------------------------------------------------------------------
_NUM = r"[-−]?\d+(?:[.,]\d+)?"
_RANGE = rf"{_NUM}(?:\s*(?:±|\+/-|-|–|to)\s*{_NUM})?"
_MOLAR = r"[pnμµumkf]?M"
_UNIT = (r"(?:%|" + _MOLAR + r"|[pnμµumk]?mol(?:/[lL]|/kg)?|[pnμµumk]?g(?:/(?:kg|m[lL]|d[lL]|[lL]|day|d|m2))?"
         r"|[μµumd]?[lL]|mmHg|°C|IU(?:/[lL])?|U/[lL]|bpm|Hz|kDa|Da|nm|mm|cm|(?:hours?|hr?|min|days?|weeks?|months?|years?))")
# Every regex is matched case-sensitively on the raw text; the union of their matches is the
# "numeric" span set. Names are the keys reported under metrics.numeric_by_kind.
NUMERIC_PATTERNS: dict[str, re.Pattern[str]] = {
    # a number or range with a unit: "8.3 μM", "10-20 mg/kg", "5 ± 2 %", "37 °C", "12 weeks"
    "value_unit": re.compile(rf"(?<![\w.]){_RANGE}\s*{_UNIT}(?![\w/])"),
    # potency constants with their value: "IC50 = 8.3 μM", "EC50 of 12 nM", "Ki 4.1 nM", "pKi = 7.2"
    "potency": re.compile(rf"\b(?:(?:IC|EC|ED|LD|GI|CC)50|pK[ida]|K[idm])\b(?:\s*values?)?\s*(?:of|=|<|>|≤|≥|~|≈|:|was|were)?"
                          rf"\s*{_RANGE}(?:\s*{_MOLAR}(?!\w))?"),
    # p-values: "p < 0.01", "P = .003", "p-value = 1.2 x 10-5", "p<1e-4"
    "p_value": re.compile(r"\b[Pp](?:\s*-?\s*values?)?\s*(?:<=|>=|[=<>≤≥])\s*(?:\d+(?:\.\d+)?\s*[x×]\s*10\s*\^?\s*[-−]\s*\d+"
                          r"|\d(?:\.\d+)?[eE][-−]?\d+|0?\.\d+|[01](?:\.0+)?)"),
    # confidence intervals: "95% CI 1.2-3.4", "95% CI: 0.8 to 1.1", "(CI, 1.02, 1.9)", "95% confidence interval [2.1, 4.0]"
    "confidence_interval": re.compile(rf"(?:\b\d+(?:\.\d+)?\s*%\s*)?\b(?:CI|C\.I\.|confidence intervals?)\b\s*[:,=]?\s*"
                                      rf"[(\[]?\s*{_NUM}\s*(?:-|–|to|,|;)\s*{_NUM}\s*[)\]]?"),
}


def numeric_spans(text: str) -> list[Span]:
    """Character spans of numeric expressions (the union of NUMERIC_PATTERNS' matches)."""
    return merge(m.span() for p in NUMERIC_PATTERNS.values() for m in p.finditer(text))


def numeric_spans_by_kind(text: str) -> dict[str, list[Span]]:
    return {name: merge(m.span() for m in p.finditer(text)) for name, p in NUMERIC_PATTERNS.items()}


# -- rare words -----------------------------------------------------------------------------------------
# A word: letters/digits joined by inner hyphens or apostrophes ("alpha-tocopherol", "2-amino", "Crohn's").
WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")


def word_key(word: str) -> str:
    """Counting key: case-folded, so sentence-initial capitals do not make a word rare."""
    return word.casefold()


def count_words(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(word_key(m.group()) for m in WORD.finditer(t))
    return counts


def rare_word_spans(text: str, counts: Mapping[str, int], max_count: int) -> list[Span]:
    """Spans of words seen at most `max_count` times in the counts (unseen words included)."""
    return [m.span() for m in WORD.finditer(text) if counts.get(word_key(m.group()), 0) <= max_count]


def read_word_counts(path: str | Path) -> dict[str, int]:
    """A word-frequency file: JSON object {word: count} (keys as `word_key` makes them), optionally gzipped."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "does not exist; pass task.word_counts=<JSON {word: count} of the training split>")
    try:
        with _opener(path) as f:
            obj = json.load(f)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFileError(path, f"not a JSON object of word counts ({e})") from None
    if not isinstance(obj, dict) or not all(isinstance(v, int) for v in obj.values()):
        raise DataFileError(path, "expected a JSON object {word: integer count}")
    return {word_key(k): v for k, v in obj.items()}
