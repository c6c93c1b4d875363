"""The decoding state and the batching engine, without HTTP: batched rows equal single rows,
the cache grows and sheds finished rows correctly, stop strings and UTF-8 are cut right, and a
failing batch fails only its own requests."""

from __future__ import annotations

import threading

import pytest
import torch

from model import Decoder, ModelConfig
from model.decode import DecodeState
from serve.engine import Delta, Engine, Failed, Finish, Params, QueueFull, Request, _Row

PROMPTS = [[2, 17, 43, 99, 5, 61, 7, 8, 9, 10, 11, 12], [2, 300, 21], [2, 5], [2, 44, 45, 46, 47, 48]]


@pytest.fixture(scope="module")
def model():
    m = Decoder(ModelConfig.from_name("tiny", window=6, global_every=2), seed=0).eval()
    m.attach_vocab(["<s>", "<pad>", "</s>", "<unk>"] + [(" " if i % 3 == 0 else "") + f"w{i}" for i in range(508)])
    for gate in (m.embed.char_gate, m.embed.term_gate):  # the hybrid stages matter in these tests
        torch.nn.init.normal_(gate, std=0.5)
    return m


def greedy(state: DecodeState, logits: torch.Tensor, steps: int) -> tuple[list[list[int]], torch.Tensor]:
    """`steps` greedy tokens per row (each fed back); returns them and the logits after the last."""
    out = [[] for _ in range(state.batch_size)]
    for _ in range(steps):
        nxt = logits.argmax(-1)
        for row, t in zip(out, nxt.tolist(), strict=True):
            row.append(t)
        logits = state.logits(state.feed(nxt[:, None])[:, -1])
    return out, logits


@pytest.mark.parametrize("room", [20, 0])  # room 0: the cache starts at the prompt's size and grows
def test_decode_state_gives_the_tokens_of_generate(model, room):
    ref = model.generate(PROMPTS, 20, eos_id=None)  # 12 + 20 > window 6: rolling buffers wrap
    state, logits = DecodeState.start(model, PROMPTS, max_new_tokens=room)
    assert greedy(state, logits, 20)[0] == ref
    assert state.capacity >= 12 + 19


def test_keep_drops_finished_rows_without_changing_the_others(model):
    ref = model.generate(PROMPTS, 16, eos_id=None)
    state, logits = DecodeState.start(model, PROMPTS, max_new_tokens=0)
    first, logits = greedy(state, logits, 5)
    state.keep([0, 3])
    rest, _ = greedy(state, logits[[0, 3]], 11)
    assert first[0] + rest[0] == ref[0] and first[3] + rest[1] == ref[3]


def test_learned_positions_stop_at_the_table(model):
    c = ModelConfig.from_name("tiny", position="learned", max_seq_len=8, window=None, char_stage=False, term_stage=False)
    state, _ = DecodeState.start(Decoder(c, seed=0).eval(), [[2, 5, 6, 7, 8, 9, 10, 11]])
    with pytest.raises(ValueError, match="max_seq_len=8"):
        state.feed(torch.tensor([[3]]))


# ---- per-choice text: stop strings, partial characters, leading space --------------------------

class Sink:
    def __init__(self):
        self.events = []

    def __call__(self, ev):
        self.events.append(ev)

    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, Delta))

    def finish(self) -> Finish:
        return next(e for e in self.events if isinstance(e, Finish))


def row(pieces: dict[int, str], **params) -> tuple[_Row, Sink]:
    sink = Sink()
    req = Request([2], Params(**{"max_tokens": 50, **params}), sink)
    return _Row(req, 0, lambda ids: "".join(pieces[i] for i in ids), eos_id=2), sink


def test_stop_string_split_across_tokens_is_cut_and_never_sent():
    r, sink = row({10: "Aspirin", 11: " inhibits\n", 12: "Us", 13: "er: next"}, stop=("\nUser:",))
    for t in (10, 11, 12):
        r.push(t)
    assert sink.text() == "Aspirin inhibits"  # "\nUs" is held back: it may start the stop string
    r.push(13)
    assert sink.text() == "Aspirin inhibits" and sink.finish().reason == "stop" and r.done


def test_held_back_text_is_sent_when_the_stop_string_does_not_follow():
    r, sink = row({10: "a\nUs", 11: "age", 2: ""}, stop=("\nUser:",))
    r.push(10)
    assert sink.text() == "a"
    r.push(11)
    r.push(2)  # EOS
    assert sink.text() == "a\nUsage" and sink.finish().reason == "stop" and sink.finish().tokens == 3


def test_incomplete_utf8_waits_for_its_next_byte_and_length_finishes():
    sink = Sink()
    texts = {(10,): "\ufffd", (10, 11): "µg"}  # a character split over two byte-level tokens
    r = _Row(Request([2], Params(max_tokens=2), sink), 0, lambda ids: texts[tuple(ids)], eos_id=2)
    r.push(10)
    assert sink.text() == ""
    r.push(11)
    assert sink.text() == "µg" and sink.finish().reason == "length"


def test_chat_replies_lose_their_leading_whitespace():
    r, sink = row({10: " ", 11: " Yes", 12: " it does"}, lstrip=True, max_tokens=3)
    for t in (10, 11, 12):
        r.push(t)
    assert sink.text() == "Yes it does"


# ---- the engine ----------------------------------------------------------------------------------

class Tok:
    """Enough of a tokenizers.Tokenizer for the engine: ids as words."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(f" w{i}" for i in ids if not (skip_special_tokens and i < 4))


def run_alone(model, prompt, params) -> tuple[str, Finish]:
    eng = Engine(model, Tok(), batch_wait_s=0)
    sink = Sink()
    eng.submit(prompt, params, sink)
    eng.start()
    _wait(lambda: any(isinstance(e, Finish) for e in sink.events))
    eng.stop()
    return sink.text(), sink.finish()


def _wait(cond, timeout: float = 60.0) -> None:
    ev = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        ev.wait(0.01)
    raise AssertionError("timed out")


def test_requests_queued_together_share_a_batch_and_match_single_runs(model):
    params = [Params(max_tokens=k, temperature=0) for k in (12, 5, 9, 12)]
    eng = Engine(model, Tok(), max_batch_size=8, batch_wait_s=0.2)
    sinks = [Sink() for _ in PROMPTS]
    for p, q, s in zip(PROMPTS, params, sinks, strict=True):
        eng.submit(p, q, s)  # queued before the engine starts: one batch for sure
    eng.start()
    _wait(lambda: all(any(isinstance(e, Finish) for e in s.events) for s in sinks))
    eng.stop()
    assert eng.stats["batches"] == 1 and eng.stats["max_batch_rows"] == 4
    for p, q, s in zip(PROMPTS, params, sinks, strict=True):
        text, fin = run_alone(model, p, q)
        assert s.text() == text and s.finish().tokens == fin.tokens == q.max_tokens


def test_n_choices_and_seeds_are_reproducible(model):
    p = Params(max_tokens=8, temperature=1.0, seed=11, n=3)
    texts = []
    for _ in range(2):
        eng = Engine(model, Tok(), batch_wait_s=0)
        sink = Sink()
        eng.submit(PROMPTS[0], p, sink)
        eng.start()
        _wait(lambda s=sink: sum(isinstance(e, Finish) for e in s.events) == 3)
        eng.stop()
        texts.append(["".join(e.text for e in sink.events if isinstance(e, Delta) and e.index == i) for i in range(3)])
    assert texts[0] == texts[1] and len(set(texts[0])) > 1  # same seed, same choices; the choices differ


def test_a_full_queue_refuses_instead_of_growing(model):
    eng = Engine(model, Tok(), max_batch_size=1, max_queue=2, batch_wait_s=0, step_delay_s=0.05).start()
    busy = Sink()
    eng.submit(PROMPTS[0], Params(max_tokens=60, temperature=0), busy)  # ~3 s of decoding
    _wait(lambda: busy.events)  # it is being decoded: the queue is empty again
    waiting = [Sink(), Sink()]
    for s in waiting:
        eng.submit(PROMPTS[1], Params(max_tokens=2, temperature=0), s)
    with pytest.raises(QueueFull, match="2 requests are already waiting"):
        eng.submit(PROMPTS[1], Params(max_tokens=2, temperature=0), Sink())
    _wait(lambda: all(any(isinstance(e, Finish) for e in s.events) for s in waiting))
    eng.stop()
    assert not any(isinstance(e, Finish) for e in busy.events) or busy.finish().tokens == 60


def test_a_failing_batch_fails_its_requests_and_the_engine_goes_on(model):
    eng = Engine(model, Tok(), batch_wait_s=0).start()
    bad, good = Sink(), Sink()
    eng.submit([2, 10 ** 6], Params(max_tokens=3, temperature=0), bad)  # an id outside the vocabulary
    _wait(lambda: bad.events)
    eng.submit(PROMPTS[1], Params(max_tokens=3, temperature=0), good)
    _wait(lambda: any(isinstance(e, Finish) for e in good.events))
    eng.stop()
    assert isinstance(bad.events[0], Failed) and "generation failed" in bad.events[0].message
    assert good.finish().tokens == 3
