"""What every scored benchmark shares: gold ids, prompts for a model, and scoring of predictions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eval.errors import DataFileError

log = logging.getLogger(__name__)


@dataclass
class Score:
    task: str
    metrics: dict[str, float]  # the headline numbers (results.json top level)
    counts: dict[str, int]  # evaluated, missing, failed (unparsable), unknown_ids
    items: list[dict] = field(default_factory=list)  # per id: gold, extracted prediction
    extra: dict = field(default_factory=dict)  # task-specific (e.g. the confusion matrix)


@dataclass(frozen=True)
class Aligned:
    """Predictions lined up with the evaluated gold ids."""

    ids: list[str]
    texts: list[str | None]  # None where the id has no prediction
    missing: int
    unknown: int


def align(task: str, predictions: dict[str, str], ids: list[str], all_ids: set[str],
          source: str = "predictions") -> Aligned:
    """Match prediction ids to gold ids; refuse a file that matches none (wrong task or id scheme)."""
    unknown = [k for k in predictions if k not in all_ids]
    if predictions and len(unknown) == len(predictions):
        example = ", ".join(sorted(all_ids)[:3])
        raise DataFileError(source, f"none of its {len(predictions)} ids is a {task} test id "
                                    f"(e.g. {example}); is it the prediction file for another task?")
    if unknown:
        log.warning("%s: %d ids are not %s test ids and are ignored (e.g. %s)", source, len(unknown),
                    task, ", ".join(unknown[:3]))
    texts = [predictions.get(i) for i in ids]
    return Aligned(ids, texts, sum(t is None for t in texts), len(unknown))
