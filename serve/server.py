"""`build(cfg)` loads the model and wires engine + app; `run(cfg)` serves until Ctrl-C;
`start(cfg)` serves from a background thread (tests, notebooks) and returns a handle to stop it."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .app import Settings, create_app
from .config import ServeConfig, api_key, is_loopback, validate
from .engine import Engine

log = logging.getLogger(__name__)


@dataclass
class Built:
    config: ServeConfig
    engine: Engine
    app: object
    settings: Settings


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def default_name(checkpoint: str) -> str:
    """The run folder's name for <run>/checkpoints/x.ckpt, the folder's name for an export."""
    p = Path(checkpoint)
    if p.is_dir():
        return p.name
    return p.parent.parent.name if p.parent.name == "checkpoints" else p.stem


def build(cfg) -> Built:
    from export.app import load_any

    c = validate(cfg)
    model, tok, info = load_any(c.checkpoint)
    if tok is None:
        raise FileNotFoundError(f"{c.checkpoint}: no tokenizer found (tokenizer.json in the run folder or the "
                                "exported folder); the server needs it to turn text into tokens")
    device = pick_device(c.device)
    dtype = (torch.bfloat16 if device.type == "cuda" else torch.float32) if c.dtype.value == "auto" else getattr(
        torch, c.dtype.value)
    model = model.to(device=device, dtype=dtype).eval()
    engine = Engine(model, tok, max_batch_size=c.max_batch_size, batch_wait_s=c.batch_wait_ms / 1000,
                    max_queue=c.max_queue, step_delay_s=c.debug.step_delay_s)
    settings = Settings(model_name=c.model_name or default_name(c.checkpoint), api_key=api_key(c),
                        default_max_tokens=c.default_max_tokens, max_n=c.max_n)
    if not is_loopback(c.host):
        log.warning("binding to %s: the server is reachable from other machines%s", c.host,
                    "" if settings.api_key else f" and has no API key (set ${c.api_key_env})")
    return Built(c, engine, create_app(engine, settings), settings)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket bound before uvicorn starts, so port=0 gets a real port we can report."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port} ({e.strerror}); pick another port=") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(b: Built):
    import uvicorn

    config = uvicorn.Config(b.app, log_level=b.config.log_level.value, access_log=True,
                            timeout_graceful_shutdown=5, lifespan="off")
    return uvicorn.Server(config)


def run(cfg) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then stop the engine."""
    b = build(cfg)
    sock = bind(b.config.host, b.config.port)
    host, port = sock.getsockname()[:2]
    b.engine.start()
    print(f"serving '{b.settings.model_name}' at http://{_url_host(host)}:{port}/v1 (context {b.engine.context} "
          f"tokens, batches of up to {b.config.max_batch_size}; API key "
          f"{'required (from $' + b.config.api_key_env + ')' if b.settings.api_key else 'not required'})", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the handler
    # it found: a KeyboardInterrupt for SIGINT, and for SIGTERM this no-op, so both end in exit 0.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        _uvicorn_server(b).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        b.engine.stop()
        sock.close()
    print("stopped", flush=True)


@dataclass
class Handle:
    built: Built
    server: object
    thread: threading.Thread
    sock: socket.socket
    url: str  # http://host:port/v1

    @property
    def engine(self) -> Engine:
        return self.built.engine

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.built.engine.stop()
        self.sock.close()


def start(cfg, ready_timeout: float = 30.0) -> Handle:
    """Serve from a daemon thread; returns once the server accepts connections."""
    b = build(cfg)
    sock = bind(b.config.host, b.config.port)
    host, port = sock.getsockname()[:2]
    b.engine.start()
    server = _uvicorn_server(b)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="serve-http", daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(int(ready_timeout / 0.02)):
        if server.started or not thread.is_alive():
            ready.set()
            break
        ready.wait(0.02)
    if not server.started:
        b.engine.stop()
        sock.close()
        raise RuntimeError(f"the server did not start within {ready_timeout:.0f} s")
    return Handle(b, server, thread, sock, f"http://{_url_host(host)}:{port}/v1")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
