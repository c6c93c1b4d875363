"""The OpenAI-compatible server through the official `openai` client, on 127.0.0.1 (a free port).

Greedy answers are checked against the model's own `generate` on the same tokens, so a wrong
prompt, a mixed-up batch row or a lost stream chunk shows as a different text."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from common.checkpoint import load_model
from serve.protocol import CHAT_STOPS, ChatMessage, render_chat
from tests.export.tiny import sentences
from tests.serve.conftest import client, running


@pytest.fixture(scope="module")
def loaded(serve_run):
    model, tok, _ = load_model(serve_run["checkpoint"])
    return model, tok


@pytest.fixture(scope="module")
def ref(loaded):
    """The text the model's own greedy `generate` gives for a prompt (as the server encodes it)."""
    model, tok = loaded

    def complete(text: str, max_tokens: int, stops: tuple[str, ...] = (), lstrip: bool = False) -> str:
        ids = [2] + tok.encode(text, add_special_tokens=False).ids
        out = tok.decode(model.generate([ids], max_tokens)[0], skip_special_tokens=True)
        out = out.lstrip() if lstrip else out
        cuts = [out.find(s) for s in stops if s in out]
        return out[: min(cuts)] if cuts else out

    return complete


@pytest.fixture(scope="module")
def server(serve_run):
    with running(serve_run["checkpoint"], batch_wait_ms=50, max_batch_size=8) as h:
        yield h


@pytest.fixture
def api(server):
    return client(server)


def test_models_lists_the_served_model(api, server):
    models = api.models.list().data
    assert [m.id for m in models] == ["run"]  # the run folder's name
    assert api.models.retrieve("run").id == "run"
    with pytest.raises(openai.NotFoundError):
        api.models.retrieve("gpt-4")


def test_completion_equals_the_models_own_greedy_generation(api, ref, loaded):
    prompt = "The drug aspirin increased"
    r = api.completions.create(model="run", prompt=prompt, max_tokens=12, temperature=0)
    assert r.object == "text_completion" and r.model == "run" and len(r.choices) == 1
    assert r.choices[0].text == ref(prompt, 12)
    n_prompt = 1 + len(loaded[1].encode(prompt, add_special_tokens=False).ids)  # </s> + the text
    assert (r.usage.prompt_tokens, r.usage.total_tokens) == (n_prompt, n_prompt + r.usage.completion_tokens)
    assert 1 <= r.usage.completion_tokens <= 12 and r.choices[0].finish_reason in ("length", "stop")


def test_token_id_prompts_are_taken_as_given(api, ref, loaded):
    tok = loaded[1]
    ids = [2] + tok.encode("Metformin", add_special_tokens=False).ids
    r = api.completions.create(model="run", prompt=ids, max_tokens=6, temperature=0)
    assert r.choices[0].text == ref("Metformin", 6) and r.usage.prompt_tokens == len(ids)


def test_several_prompts_get_their_own_choices_in_order(api, ref):
    prompts = ["Metformin", "The drug aspirin increased", "Patients"]
    r = api.completions.create(model="run", prompt=prompts, max_tokens=6, temperature=0)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert [c.text for c in r.choices] == [ref(p, 6) for p in prompts]


def test_chat_uses_the_documented_template(api, ref):
    messages = [{"role": "system", "content": "You answer questions about drugs."},
                {"role": "user", "content": "What does aspirin do?"}]
    r = api.chat.completions.create(model="run", messages=messages, max_tokens=10, temperature=0)
    text = render_chat([ChatMessage(**m) for m in messages])
    assert text == "You answer questions about drugs.\n\nUser: What does aspirin do?\nAssistant:"
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == ref(text, 10, CHAT_STOPS, lstrip=True)


def test_streamed_completion_and_chat_equal_the_non_streamed_ones(api):
    kw = dict(model="run", prompt="Patients with insulin", max_tokens=14, temperature=0)
    whole = api.completions.create(**kw)
    chunks = list(api.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens and not chunks[-1].choices
    assert len([c for c in chunks if c.choices]) > 2  # really streamed, not one block

    msgs = [{"role": "user", "content": "Does metformin lower glucose?"}]
    whole = api.chat.completions.create(model="run", messages=msgs, max_tokens=10, temperature=0)
    parts = list(api.chat.completions.create(model="run", messages=msgs, max_tokens=10, temperature=0, stream=True))
    assert parts[0].choices[0].delta.role == "assistant"
    assert "".join(p.choices[0].delta.content or "" for p in parts) == whole.choices[0].message.content
    assert parts[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_stop_sequences_cut_the_text(api):
    full = api.completions.create(model="run", prompt="The drug", max_tokens=16, temperature=0).choices[0].text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    r = api.completions.create(model="run", prompt="The drug", max_tokens=16, temperature=0, stop=[stop, "zzz"])
    assert r.choices[0].text == full[: full.index(stop)] and r.choices[0].finish_reason == "stop"


def test_n_choices_with_a_seed_are_reproducible(api, loaded):
    kw = dict(model="run", prompt="Metformin", max_tokens=8, temperature=1.0, top_p=0.95, n=3, seed=5)
    a, b = api.completions.create(**kw), api.completions.create(**kw)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.text for c in a.choices] == [c.text for c in b.choices]
    assert len({c.text for c in a.choices}) > 1  # the choices are separate samples
    assert a.usage.prompt_tokens == 1 + len(loaded[1].encode("Metformin", add_special_tokens=False).ids)  # once


def test_concurrent_clients_each_get_their_own_greedy_answer(api, server):
    """8+ clients at once: the engine batches them, and every client gets what it gets alone."""
    candidates = [s[: 12 + i] for i, s in enumerate(sentences(24, seed=3))]
    alone = {p: api.completions.create(model="run", prompt=p, max_tokens=10, temperature=0).choices[0].text
             for p in candidates}
    prompts, seen = [], set()
    for p in candidates:  # distinct answers, so a mix-up between clients cannot go unnoticed
        if alone[p] not in seen and len(prompts) < 10:
            prompts.append(p)
            seen.add(alone[p])
    assert len(prompts) >= 8, f"only {len(prompts)} distinct answers among {len(candidates)} prompts"
    server.engine.stats["max_batch_rows"] = 0
    got: dict[str, str] = {}
    barrier = threading.Barrier(len(prompts))

    def one(p: str) -> None:
        c = client(server)
        barrier.wait(timeout=30)
        got[p] = c.completions.create(model="run", prompt=p, max_tokens=10, temperature=0).choices[0].text

    threads = [threading.Thread(target=one, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got == {p: alone[p] for p in prompts}
    assert server.engine.stats["max_batch_rows"] > 1, "the concurrent requests never shared a batch"


def test_malformed_requests_get_4xx_and_the_server_keeps_serving(api, server):
    url = server.url
    cases = [
        ("/completions", b"{not json", 400, "not valid JSON"),
        ("/completions", b'{"model": "run", "prompt": "x", "temperature": -1}', 400, "temperature"),
        ("/completions", b'{"model": "run", "prompt": "x", "frobnicate": 1}', 400, "Unrecognized request argument"),
        ("/completions", b'{"model": "run"}', 400, "missing required parameter: prompt"),
        ("/completions", b'[1, 2]', 400, "invalid value"),
        ("/completions", b'{"model": "run", "prompt": "x", "n": 99}', 400, "n=99"),
        ("/completions", b'{"model": "run", "prompt": "x", "logprobs": 3}', 400, "logprobs"),
        ("/completions", b'{"model": "run", "prompt": "x", "stop": [""]}', 400, "must not be empty"),
        ("/completions", b'{"model": "run", "prompt": [1, 999999]}', 400, "outside the vocabulary"),
        ("/chat/completions", b'{"model": "run", "messages": []}', 400, "messages"),
        ("/chat/completions", b'{"model": "run", "messages": [{"role": "robot", "content": "hi"}]}', 400, "role"),
        ("/chat/completions", b'{"model": "run", "messages": [{"role": "user", "content": "x"}], "tools": []}', 400,
         "Unrecognized request argument supplied: tools"),
        ("/nowhere", b"{}", 404, "Not Found"),
    ]
    for path, body, status, words in cases:
        r = httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == status, (path, body, r.text)
        err = r.json()["error"]
        assert words in err["message"] and err["type"], (body, err)
    with pytest.raises(openai.NotFoundError) as e:
        api.completions.create(model="gpt-4", prompt="x", max_tokens=2)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        api.completions.create(model="run", prompt="x", max_tokens=100_000)
    assert e.value.code == "context_length_exceeded" and "maximum context length is 128" in e.value.message
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="run", messages=[{"role": "user", "content": "x" * 2000}])
    r = api.completions.create(model="run", prompt="Metformin", max_tokens=3, temperature=0)  # still serving
    assert r.usage.completion_tokens >= 1 and server.engine.alive


def test_a_full_queue_is_answered_503_and_the_server_recovers(serve_run):
    with running(serve_run["checkpoint"], max_batch_size=1, max_n=1, max_queue=1, batch_wait_ms=0,
                 debug={"step_delay_s": 0.05}) as h:
        api = client(h)
        stream = api.completions.create(model="run", prompt="Metformin", max_tokens=80, temperature=0, stream=True)
        first = next(iter(stream))  # the engine is decoding it (about 4 s)
        assert first.choices
        queued: dict = {}
        t = threading.Thread(target=lambda: queued.setdefault(
            "r", client(h).completions.create(model="run", prompt="Patients", max_tokens=2, temperature=0)))
        t.start()
        deadline = time.monotonic() + 30
        while h.engine.queue.qsize() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(openai.InternalServerError) as e:
            api.completions.create(model="run", prompt="x", max_tokens=2)
        assert e.value.status_code == 503 and e.value.code == "server_overloaded"
        assert e.value.response.headers.get("retry-after") == "1"
        stream.close()  # the client leaves: the engine stops decoding it
        t.join(timeout=60)
        assert queued["r"].usage.completion_tokens == 2
        assert api.completions.create(model="run", prompt="x", max_tokens=2, temperature=0).choices


def test_api_key_is_required_when_set_and_never_logged(serve_run, monkeypatch, caplog, capfd):
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("BIOGPT_TEST_KEY", key)
    caplog.set_level("DEBUG")
    with running(serve_run["checkpoint"], api_key_env="BIOGPT_TEST_KEY", log_level="debug") as h:
        with pytest.raises(openai.AuthenticationError) as e:
            client(h, api_key="wrong").models.list()
        assert e.value.code == "invalid_api_key" and "wrong" not in e.value.message
        assert httpx.get(h.url + "/models", timeout=10).status_code == 401  # no header at all
        r = client(h, api_key=key).completions.create(model="run", prompt="Metformin", max_tokens=2, temperature=0)
        assert r.choices
        assert httpx.get(h.url.removesuffix("/v1") + "/health", timeout=10).json()["status"] == "ok"
    out, err = capfd.readouterr()
    assert key not in caplog.text + out + err
    assert "wrong" not in caplog.text


def test_an_exported_folder_serves_the_same_answers(serve_run, ref, tmp_path):
    from export.app import run
    from export.config import ExportConfig

    run(ExportConfig(checkpoint=str(serve_run["checkpoint"]), out_dir=str(tmp_path / "exported")))
    with running(tmp_path / "exported") as h:
        api = client(h)
        assert api.models.list().data[0].id == "exported"
        r = api.completions.create(model="exported", prompt="The drug aspirin increased", max_tokens=12, temperature=0)
        assert r.choices[0].text == ref("The drug aspirin increased", 12)
