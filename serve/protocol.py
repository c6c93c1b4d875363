"""The OpenAI request bodies this server accepts (pydantic), and the chat template.

Unknown fields are refused (400, as OpenAI does), and so are known fields with values this server
cannot honour (logprobs, penalties, tools, ...) instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Unsupported(ValueError):
    """A request asks for something this server does not do: 400 naming the parameter."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(message)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None  # accepted and ignored, as an end-user id for the operator's own logs

    def stop_list(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4:
            raise Unsupported("stop", "at most 4 stop sequences are allowed")
        if any(not s for s in stops):
            raise Unsupported("stop", "stop sequences must not be empty")
        return stops

    def check_common(self) -> None:
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise Unsupported(name, f"{name} is not supported by this server; leave it unset or 0")
        if self.logit_bias:
            raise Unsupported("logit_bias", "logit_bias is not supported by this server")
        if self.stream_options is not None and not self.stream:
            raise Unsupported("stream_options", "stream_options is only allowed with stream=true")


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    suffix: str | None = None

    def check(self) -> None:
        self.check_common()
        if self.echo:
            raise Unsupported("echo", "echo is not supported by this server")
        if self.logprobs is not None:
            raise Unsupported("logprobs", "logprobs is not supported by this server")
        if self.best_of not in (None, self.n):
            raise Unsupported("best_of", "best_of is not supported by this server (leave it unset or equal to n)")
        if self.suffix:
            raise Unsupported("suffix", "suffix (insertion) is not supported by a left-to-right model")
        if isinstance(self.prompt, list) and not self.prompt:
            raise Unsupported("prompt", "prompt is an empty list")

    def prompts(self) -> list[str | list[int]]:
        """One entry per prompt: text, or token ids given as they are."""
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if all(isinstance(x, int) for x in p):
            return [list(p)]
        return list(p)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None

    def check(self) -> None:
        self.check_common()
        if self.logprobs or self.top_logprobs is not None:
            raise Unsupported("logprobs", "logprobs is not supported by this server")
        if self.response_format and self.response_format.get("type") != "text":
            raise Unsupported("response_format", "only response_format {\"type\": \"text\"} is supported")
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise Unsupported("max_completion_tokens", "give max_tokens or max_completion_tokens, not both")

    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


# ---- the chat template ----------------------------------------------------------------------------
# A base model was trained on article text, not on dialogues, so the template is a plain transcript
# it can continue; stop strings end the reply where the next turn would begin.
#
#     {system message}\n\n          (system/developer messages, if any, in order)
#     User: {message}\n
#     Assistant: {message}\n        (earlier replies)
#     User: {message}\n
#     Assistant:                     <- the model continues here
CHAT_STOPS = ("\nUser:", "\nAssistant:")


def render_chat(messages: list[ChatMessage]) -> str:
    parts = []
    for m in messages:
        text = m.text().strip()
        if m.role in ("system", "developer"):
            parts.append(f"{text}\n\n")
        else:
            parts.append(f"{'User' if m.role == 'user' else 'Assistant'}: {text}\n")
    return "".join(parts) + "Assistant:"
