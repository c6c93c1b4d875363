"""Free-text generation (`python -m eval task=generate task.prompt=...`): prompts in, continuations
out, nothing to score and nothing to train on. Each prompt is read after an EOS, as every
pretraining document follows one."""

from __future__ import annotations

from tasks.base import Kind, Mode, Task


class Generate(Task):
    name = "generate"
    kind = Kind.GENERATION
    modes = (Mode.generate,)


TASK = Generate()
