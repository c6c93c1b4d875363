"""The OpenAI-compatible HTTP API (FastAPI) over the batching engine.

    GET  /v1/models, /v1/models/{id}      the one model served
    POST /v1/completions                   prompt (text, texts, or token ids) -> text
    POST /v1/chat/completions              messages -> reply, through the chat template (protocol.py)
    GET  /health                           liveness, queue length and batch counts, without the API key

Errors use OpenAI's shape, {"error": {"message", "type", "param", "code"}}: 400 for a bad request
(malformed JSON, a wrong or unsupported parameter, a prompt + max_tokens beyond the context), 401
for a wrong API key, 404 for an unknown model or path, 503 when the queue is full or the engine is
stopping, 500 when generation itself failed. The server keeps serving after any of them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .engine import Delta, Engine, EngineStopped, Event, Failed, Finish, Params, QueueFull
from .engine import Request as EngineRequest
from .protocol import CHAT_STOPS, ChatRequest, CompletionRequest, Unsupported, render_chat

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "1"} if self.status == 503 else None
        return JSONResponse(error_body(self.message, self.type, self.param, self.code), self.status, headers=headers)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class Settings:
    model_name: str
    api_key: str | None = None
    default_max_tokens: int = 16
    max_n: int = 4
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class _Job:
    """One engine request seen from the event loop: its events arrive on an asyncio queue."""
    prompt_tokens: int
    n: int
    events: asyncio.Queue
    request: EngineRequest | None = None


def create_app(engine: Engine, settings: Settings) -> FastAPI:
    app = FastAPI(title="biogpt-healthcare", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine, app.state.settings = engine, settings

    # ---- errors ----------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return e.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        err = (e.errors() or [{}])[0]
        kind = err.get("type", "")
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        param = None if kind == "json_invalid" else ".".join(loc) or None  # a JSON error's loc is an offset
        if kind == "json_invalid":
            msg = f"the request body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
        elif kind == "extra_forbidden":
            msg = f"Unrecognized request argument supplied: {param}"
        elif kind == "missing":
            msg = f"missing required parameter: {param}"
        else:
            msg = f"invalid value for {param or 'the request body'}: {err.get('msg', 'invalid')}"
        return JSONResponse(error_body(msg, "invalid_request_error", param, kind or None), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(e.detail), "invalid_request_error"), e.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, e: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse(error_body(f"internal error: {type(e).__name__}", "server_error"), 500)

    # ---- auth ------------------------------------------------------------------------------------
    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if settings.api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.api_key.encode())
            if not ok:  # never echo what was sent: it may be a real key for another service
                return JSONResponse(error_body("Incorrect or missing API key: send Authorization: Bearer <key>",
                                               "invalid_request_error", None, "invalid_api_key"), 401)
        return await call_next(request)

    # ---- routes ----------------------------------------------------------------------------------
    def model_card() -> dict:
        return {"id": settings.model_name, "object": "model", "created": settings.created,
                "owned_by": "biogpt-healthcare", "max_context_length": engine.context}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok" if engine.alive else "stopping", "model": settings.model_name,
                "queued": engine.queue.qsize(), "stats": dict(engine.stats)}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict:
        check_model(model_id)
        return model_card()

    def check_model(name: str) -> None:
        if name != settings.model_name:
            raise ApiError(404, f"The model '{name}' does not exist; this server serves '{settings.model_name}' "
                                "(GET /v1/models)", param="model", code="model_not_found")

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        check_model(body.model)
        _check(body)
        prompts = [engine.encode(p) if isinstance(p, str) else list(p) for p in body.prompts()]
        for i, ids in enumerate(prompts):
            bad = [t for t in ids if not 0 <= t < engine.model.config.vocab_size]
            if bad:
                raise ApiError(400, f"prompt {i}: token id {bad[0]} is outside the vocabulary "
                                    f"(0..{engine.model.config.vocab_size - 1})", param="prompt")
            if not ids:
                raise ApiError(400, f"prompt {i} is empty", param="prompt")
        params = [_params(body, len(ids), body.max_tokens, (), False, "prompt") for ids in prompts]
        jobs = _submit(prompts, params)
        rid = f"cmpl-{uuid.uuid4().hex}"
        if body.stream:
            return _sse(_stream_completion(jobs, rid, body), jobs)
        texts, finishes, usage = await _collect(jobs)
        choices = [{"index": i, "text": texts[i], "logprobs": None, "finish_reason": finishes[i]}
                   for i in range(len(texts))]
        _log(rid, usage, finishes)
        return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": settings.model_name,
                "choices": choices, "usage": usage, "system_fingerprint": None}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest):
        check_model(body.model)
        _check(body)
        ids = engine.encode(render_chat(body.messages))
        params = _params(body, len(ids), body.token_limit(), CHAT_STOPS, True, "messages")
        jobs = _submit([ids], [params])
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            return _sse(_stream_chat(jobs, rid, body), jobs)
        texts, finishes, usage = await _collect(jobs)
        choices = [{"index": i, "message": {"role": "assistant", "content": texts[i]}, "logprobs": None,
                    "finish_reason": finishes[i]} for i in range(len(texts))]
        _log(rid, usage, finishes)
        return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": settings.model_name,
                "choices": choices, "usage": usage, "system_fingerprint": None}

    # ---- helpers ---------------------------------------------------------------------------------
    def _check(body) -> None:
        try:
            body.check()
            body.stop_list()
        except Unsupported as e:
            raise ApiError(400, str(e), param=e.param) from None
        if body.n > settings.max_n:
            raise ApiError(400, f"n={body.n} is more than this server allows ({settings.max_n})", param="n")

    def _params(body, prompt_len: int, max_tokens: int | None, extra_stops: tuple[str, ...], lstrip: bool,
                prompt_param: str) -> Params:
        room = engine.context - prompt_len
        if room < 1:
            raise ApiError(400, f"This model's maximum context length is {engine.context} tokens, and the prompt "
                                f"already has {prompt_len}; shorten it", param=prompt_param,
                           code="context_length_exceeded")
        if max_tokens is None:
            max_tokens = min(settings.default_max_tokens, room)
        elif max_tokens > room:
            raise ApiError(400, f"This model's maximum context length is {engine.context} tokens; you requested "
                                f"{prompt_len + max_tokens} ({prompt_len} in the prompt, {max_tokens} to generate). "
                                "Lower max_tokens or shorten the prompt", param="max_tokens",
                           code="context_length_exceeded")
        temperature = 1.0 if body.temperature is None else body.temperature  # OpenAI's default
        return Params(max_tokens=max_tokens, temperature=temperature, top_p=1.0 if body.top_p is None else body.top_p,
                      stop=tuple(body.stop_list()) + extra_stops, seed=body.seed, n=body.n, lstrip=lstrip,
                      stream=body.stream)

    def _submit(prompts: list[list[int]], params: list[Params]) -> list[_Job]:
        loop = asyncio.get_running_loop()
        jobs: list[_Job] = []
        try:
            for ids, p in zip(prompts, params, strict=True):
                q: asyncio.Queue = asyncio.Queue()
                job = _Job(len(ids), p.n, q)
                job.request = engine.submit(ids, p, lambda ev, q=q: loop.call_soon_threadsafe(q.put_nowait, ev))
                jobs.append(job)
        except (QueueFull, EngineStopped) as e:
            for j in jobs:
                j.request.cancelled.set()
            busy = isinstance(e, QueueFull)
            raise ApiError(503, ("The server is overloaded: " if busy else "The server is not accepting requests: ")
                           + f"{e}; retry later", "server_error" if not busy else "overloaded_error",
                           code="server_overloaded" if busy else "server_stopping") from None
        return jobs

    async def _events(jobs: list[_Job]) -> AsyncIterator[tuple[int, Event]]:
        """(job index, event) until every choice of every job has finished."""
        pending = {i: j.n for i, j in enumerate(jobs)}
        getters = {i: asyncio.ensure_future(j.events.get()) for i, j in enumerate(jobs)}
        try:
            while getters:
                done, _ = await asyncio.wait(getters.values(), return_when=asyncio.FIRST_COMPLETED)
                for i in [k for k, g in getters.items() if g in done]:
                    ev = getters.pop(i).result()
                    yield i, ev
                    if isinstance(ev, Failed):
                        raise ApiError(500, ev.message, "server_error")
                    if isinstance(ev, Finish):
                        pending[i] -= 1
                    if pending[i]:
                        getters[i] = asyncio.ensure_future(jobs[i].events.get())
        finally:
            for g in getters.values():
                g.cancel()

    async def _collect(jobs: list[_Job]) -> tuple[list[str], list[str], dict]:
        n = jobs[0].n
        texts = [""] * (len(jobs) * n)
        finishes = ["length"] * len(texts)
        completion = 0
        try:
            async for i, ev in _events(jobs):
                if isinstance(ev, Delta):
                    texts[i * n + ev.index] += ev.text
                elif isinstance(ev, Finish):
                    finishes[i * n + ev.index] = ev.reason
                    completion += ev.tokens
        except BaseException:
            for j in jobs:
                j.request.cancelled.set()
            raise
        prompt = sum(j.prompt_tokens for j in jobs)
        return texts, finishes, {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}

    async def _stream_completion(jobs: list[_Job], rid: str, body: CompletionRequest) -> AsyncIterator[dict]:
        n, created, completion = jobs[0].n, int(time.time()), 0

        def chunk(choices: list[dict]) -> dict:
            return {"id": rid, "object": "text_completion", "created": created, "model": settings.model_name,
                    "choices": choices, "system_fingerprint": None}

        async for i, ev in _events(jobs):
            if isinstance(ev, Delta):
                yield chunk([{"index": i * n + ev.index, "text": ev.text, "logprobs": None, "finish_reason": None}])
            elif isinstance(ev, Finish):
                completion += ev.tokens
                yield chunk([{"index": i * n + ev.index, "text": "", "logprobs": None, "finish_reason": ev.reason}])
        if body.stream_options and body.stream_options.include_usage:
            prompt = sum(j.prompt_tokens for j in jobs)
            yield {**chunk([]), "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                          "total_tokens": prompt + completion}}

    async def _stream_chat(jobs: list[_Job], rid: str, body: ChatRequest) -> AsyncIterator[dict]:
        created, completion = int(time.time()), 0

        def chunk(choices: list[dict]) -> dict:
            return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": settings.model_name,
                    "choices": choices, "system_fingerprint": None}

        yield chunk([{"index": k, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                      "finish_reason": None} for k in range(jobs[0].n)])
        async for _, ev in _events(jobs):
            if isinstance(ev, Delta):
                yield chunk([{"index": ev.index, "delta": {"content": ev.text}, "logprobs": None, "finish_reason": None}])
            elif isinstance(ev, Finish):
                completion += ev.tokens
                yield chunk([{"index": ev.index, "delta": {}, "logprobs": None, "finish_reason": ev.reason}])
        if body.stream_options and body.stream_options.include_usage:
            prompt = jobs[0].prompt_tokens
            yield {**chunk([]), "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                          "total_tokens": prompt + completion}}

    def _sse(chunks: AsyncIterator[dict], jobs: list[_Job]) -> StreamingResponse:
        async def body() -> AsyncIterator[str]:
            try:
                async for c in chunks:
                    yield f"data: {json.dumps(c, ensure_ascii=False)}\n\n"
            except ApiError as e:  # headers are gone: the error travels as an event
                yield f"data: {json.dumps(error_body(e.message, e.type, e.param, e.code))}\n\n"
            finally:  # the client left (or we are done): stop decoding what nobody will read
                for j in jobs:
                    j.request.cancelled.set()
            yield "data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def _log(rid: str, usage: dict, finishes: list[str]) -> None:
        # Never the prompt text or headers: they may hold patient data or keys.
        log.info("%s: %d prompt + %d completion tokens, finish %s", rid, usage["prompt_tokens"],
                 usage["completion_tokens"], ",".join(sorted(set(finishes))))

    return app
