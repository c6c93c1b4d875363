"""The batching engine: one thread owns the model and decodes requests in batches.

Requests wait in a bounded queue. The engine takes the first one, waits up to `batch_wait` for
more (up to `max_batch_size` sequences; a request with n choices brings n), left-pads the prompts
and decodes them together with `model.decode.DecodeState`: every step is one forward pass for the
whole batch. A row's positions start at its first real token and pad keys are masked, so a greedy
row gives the same tokens alone or in a batch. Finished rows leave the batch (`DecodeState.keep`);
requests that arrive meanwhile wait for the next batch.

Each choice sends events to its request's callback (called on the engine thread): `Delta(index,
text)` for new text (every step when streaming, once at the end otherwise), `Finish(index, reason,
tokens)` at the end, `Failed(message)` when the batch broke. The engine knows nothing of HTTP or
asyncio.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)


@dataclass
class Params:
    max_tokens: int
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    lstrip: bool = False  # drop leading whitespace of the text (chat replies)
    stream: bool = True  # text as it comes (Delta per step); False: one Delta at the end


@dataclass
class Delta:
    index: int
    text: str


@dataclass
class Finish:
    index: int
    reason: str  # "stop" (EOS or a stop string) | "length"
    tokens: int  # tokens generated for this choice (the EOS included)


@dataclass
class Failed:
    message: str


Event = Delta | Finish | Failed


class QueueFull(RuntimeError):
    pass


class EngineStopped(RuntimeError):
    pass


@dataclass
class Request:
    prompt: list[int]
    params: Params
    on_event: Callable[[Event], None]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def emit(self, ev: Event) -> None:
        try:
            self.on_event(ev)
        except Exception:  # a consumer that went away must not stop the batch
            log.debug("event consumer failed", exc_info=True)


class _Row:
    """One choice of one request: its tokens, text and stop-string bookkeeping."""

    def __init__(self, req: Request, index: int, decode: Callable[[list[int]], str], eos_id: int):
        self.req, self.index, self.decode, self.eos_id = req, index, decode, eos_id
        self.tokens: list[int] = []
        self.generated = 0
        self.emitted = 0  # characters of the text already sent
        self.done = False

    def push(self, tok: int) -> None:
        self.generated += 1
        p = self.req.params
        if tok == self.eos_id:
            return self._finish("stop", self._text())
        self.tokens.append(tok)
        text = self._text()
        cut = min((i for i in (text.find(s, max(0, self.emitted - len(s) + 1)) for s in p.stop) if i >= 0), default=-1)
        if cut >= 0:
            return self._finish("stop", text[:cut])
        if self.generated >= p.max_tokens:
            return self._finish("length", text)
        # Hold back an incomplete UTF-8 character and any tail that may start a stop string.
        safe = len(text.rstrip("\ufffd"))
        for s in p.stop:
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:k]):
                    safe = min(safe, len(text) - k)
                    break
        self._send(text[:safe])

    def _text(self) -> str:
        text = self.decode(self.tokens)
        return text.lstrip() if self.req.params.lstrip else text

    def _send(self, text: str, final: bool = False) -> None:
        # A non-streamed choice gets its text in one event: fewer wake-ups of the HTTP event loop,
        # which competes with this thread for the interpreter on every event.
        if len(text) > self.emitted and (final or self.req.params.stream):
            self.req.emit(Delta(self.index, text[self.emitted:]))
            self.emitted = len(text)

    def _finish(self, reason: str, text: str) -> None:
        self._send(text, final=True)
        self.done = True
        self.req.emit(Finish(self.index, reason, self.generated))


class Engine:
    def __init__(self, model, tokenizer, *, max_batch_size: int = 8, batch_wait_s: float = 0.005,
                 max_queue: int = 64, step_delay_s: float = 0.0, eos_id: int = 2, pad_id: int = 1):
        self.model, self.tokenizer = model, tokenizer
        self.device = model.embed.tok.weight.device
        self.context = model.config.max_seq_len
        self.max_batch_size, self.batch_wait_s, self.step_delay_s = max_batch_size, batch_wait_s, step_delay_s
        self.eos_id, self.pad_id = eos_id, pad_id
        self.queue: queue.Queue[Request] = queue.Queue(maxsize=max_queue)
        self.stats = {"batches": 0, "max_batch_rows": 0, "requests": 0, "tokens": 0, "steps": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="serve-engine", daemon=True)
        self._carry: Request | None = None

    # ---- text ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Prompt ids: `</s>` (the separator every training document follows) + the text's tokens."""
        return [self.eos_id] + list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Engine:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        while True:  # whoever still waits gets an answer
            try:
                self.queue.get_nowait().emit(Failed("the server is shutting down"))
            except queue.Empty:
                break

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def submit(self, prompt: list[int], params: Params, on_event: Callable[[Event], None]) -> Request:
        """Queue a request (also before `start`); raises QueueFull when `max_queue` requests are
        already waiting, EngineStopped after `stop`."""
        if self._stop.is_set():
            raise EngineStopped("the engine is stopping")
        req = Request(list(prompt), params, on_event)
        try:
            self.queue.put_nowait(req)
        except queue.Full:
            raise QueueFull(f"{self.queue.maxsize} requests are already waiting") from None
        return req

    # ---- the loop --------------------------------------------------------------------------------
    def _next(self, timeout: float) -> Request | None:
        if self._carry is not None:
            req, self._carry = self._carry, None
            return req
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _gather(self, first: Request) -> list[Request]:
        batch, rows = [first], first.params.n
        deadline = time.monotonic() + self.batch_wait_s
        while rows < self.max_batch_size:
            left = deadline - time.monotonic()
            try:
                req = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if rows + req.params.n > self.max_batch_size:
                self._carry = req  # first in line for the next batch
                break
            batch.append(req)
            rows += req.params.n
        return [r for r in batch if not r.cancelled.is_set()]

    def _loop(self) -> None:
        while not self._stop.is_set():
            first = self._next(timeout=0.05)
            if first is None:
                continue
            batch = self._gather(first)
            if not batch:
                continue
            try:
                self.run_batch(batch)
            except Exception as e:  # one broken batch must not take the server down
                log.exception("batch of %d requests failed", len(batch))
                for r in batch:
                    r.emit(Failed(f"generation failed: {type(e).__name__}: {str(e)[:200]}"))

    @torch.no_grad()
    def run_batch(self, batch: list[Request]) -> None:
        from model.decode import DecodeState
        from model.generate import sample_next

        rows = [_Row(r, i, self.decode, self.eos_id) for r in batch for i in range(r.params.n)]
        # one generator per request, shared by its n rows: its draws do not depend on its batch-mates
        row_gens: list[torch.Generator | None] = []
        for r in batch:
            g = None
            if r.params.temperature > 0:
                g = torch.Generator(device=self.device)
                g.manual_seed(r.params.seed) if r.params.seed is not None else g.seed()
            row_gens += [g] * r.params.n
        self.stats["batches"] += 1
        self.stats["requests"] += len(batch)
        self.stats["max_batch_rows"] = max(self.stats["max_batch_rows"], len(rows))
        longest = max(r.params.max_tokens for r in batch)
        state, logits = DecodeState.start(self.model, [row.req.prompt for row in rows], self.pad_id, longest)
        active = list(range(len(rows)))  # state row i holds rows[active[i]]
        while active:
            nxt = logits.argmax(dim=-1)  # (B,) greedy rows keep these
            for i, ri in enumerate(active):
                p = rows[ri].req.params
                if p.temperature > 0:
                    top_p = p.top_p if p.top_p < 1.0 else None
                    nxt[i] = sample_next(logits[i: i + 1], p.temperature, None, top_p, row_gens[ri])[0]
            for i, tok in enumerate(nxt.tolist()):
                row = rows[active[i]]
                if row.req.cancelled.is_set():
                    row.done = True
                else:
                    row.push(tok)
            self.stats["tokens"] += len(active)
            self.stats["steps"] += 1
            keep = [i for i, ri in enumerate(active) if not rows[ri].done]
            if not keep or self._stop.is_set():
                break
            if len(keep) < len(active):
                state.keep(keep)
                nxt, active = nxt[keep], [active[i] for i in keep]
            logits = state.logits(state.feed(nxt[:, None])[:, -1])  # (B, V)
            if self.step_delay_s:
                time.sleep(self.step_delay_s)
        for row in rows:
            if not row.done:  # only when stopping
                row.req.emit(Failed("the server is shutting down"))
                row.done = True
