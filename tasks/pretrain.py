"""Next-token pretraining on data_prep's token shards, and its evaluation: perplexity and bits per byte.

Files: not the benchmark folder but a data_prep out_dir (`task.data_dir`): `manifest.json`, which
names the tokenizer and the `train` / `val` shards (docs/architecture.md). Training reads packed
windows of `seq_len + 1` tokens; eval cuts a split into consecutive, non-overlapping windows of
`block_size + 1` tokens and predicts every token after a window's first once.
"""

from __future__ import annotations

import math

from tasks.base import Kind, Mode, Task

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
