"""`transformers` wrapper of the biogpt-healthcare decoder, as exported by `python -m export`.

This file sits beside copies of the project's own `model/*.py` files (config.py, decoder.py, ...):
the model is not re-implemented here. The wrapper adds what `transformers` expects: a config class,
`from_pretrained`/`save_pretrained`, a loss for `labels`, and `generate()` through
`GenerationMixin`, with the decoder's own KV cache (`decode.DecodeState`: rolling buffers of W
slots for local-attention layers) passed between steps as the cache.

    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)
    ids = tok("Aspirin inhibits", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=20, do_sample=False)

Batches must be left-padded (the exported tokenizer pads on the left).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .attention import AttnContext
from .attention_backends import BACKENDS  # noqa: F401  (see below)
from .config import ModelConfig
from .decode import DecodeState
from .decoder import Decoder

# transformers copies into its module cache only the files named in `from .x import` lines;
# attention.py imports its kernels as `from . import attention_backends`, hence the import above.

# transformers 5 renamed `past_key_values` to `cache` (outputs and keyword arguments); both are
# accepted, and outputs use whichever field this version has.
_CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


class BioGptHealthcareConfig(PretrainedConfig):
    """`biogpt_config` holds the project's ModelConfig as a dict; the usual transformers names
    (hidden_size, num_hidden_layers, ...) mirror it for tools that read them."""

    model_type = "biogpt_healthcare"

    def __init__(self, biogpt_config: dict | None = None, **kwargs: Any):
        self.biogpt_config = dict(biogpt_config or {})
        c = ModelConfig.from_mapping(self.biogpt_config)  # fails here, naming the key, on a bad config
        kwargs.setdefault("bos_token_id", 0)
        kwargs.setdefault("pad_token_id", c.pad_id)
        kwargs.setdefault("eos_token_id", 2)
        # The head reads the token table directly (Decoder.head_weight): there is no separate
        # output embedding for transformers to tie.
        kwargs["tie_word_embeddings"] = False
        kwargs.setdefault("use_cache", True)
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings"):
            kwargs.pop(key, None)  # always derived from biogpt_config
        super().__init__(**kwargs)
        self.vocab_size, self.hidden_size = c.vocab_size, c.d_model
        self.num_hidden_layers, self.num_attention_heads = c.n_layer, c.n_head
        self.intermediate_size, self.max_position_embeddings = c.d_ff, c.max_seq_len

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_mapping(self.biogpt_config)


class BioGptHealthcareCache(DecodeState):
    """The decoder's own KV cache as transformers' `generate` sees it (not a transformers `Cache`:
    nothing here is compiled, cropped or offloaded)."""

    is_compileable = False
    is_croppable = False

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length


def _left_pad_lengths(attention_mask: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor:
    """(B,) number of leading pad columns; refuses right padding (positions would be wrong)."""
    B, T = ids.shape
    if attention_mask is None:
        return torch.zeros(B, dtype=torch.long, device=ids.device)
    mask = attention_mask.to(torch.long)
    pad = T - mask.sum(dim=1)
    cols = torch.arange(T, device=ids.device)
    if not torch.equal(mask, (cols[None, :] >= pad[:, None]).long()):
        raise ValueError("biogpt_healthcare: attention_mask must be left padding (zeros, then ones); "
                         "set tokenizer.padding_side = 'left'")
    return pad


class BioGptHealthcareForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = BioGptHealthcareConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["Block"]
    _is_stateful = False

    def __init__(self, config: BioGptHealthcareConfig):
        super().__init__(config)
        self.model = Decoder(config.model_config)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Decoder initialises its own weights (GPT-2 scheme) and an export holds every tensor."""

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the cache is the decoder's own, made in prepare_inputs_for_generation

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.embed.tok

    def get_output_embeddings(self) -> None:
        return None

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                cache: BioGptHealthcareCache | None = None, past_key_values: BioGptHealthcareCache | None = None,
                use_cache: bool | None = None, labels: torch.LongTensor | None = None,
                return_dict: bool | None = None, **kwargs: Any) -> CausalLMOutputWithPast:
        """A passed cache (from `generate`, or an earlier call with use_cache=True) continues
        it with `input_ids` as the next columns; otherwise this is the plain decoder forward."""
        for unsupported in ("position_ids", "inputs_embeds"):
            if kwargs.get(unsupported) is not None:
                raise ValueError(f"biogpt_healthcare: {unsupported} is not supported; positions come from the "
                                 "attention_mask (left padding), embeddings from input_ids")
        state = cache if cache is not None else past_key_values
        if state is None and use_cache:
            state = BioGptHealthcareCache(self.model, _left_pad_lengths(attention_mask, input_ids),
                                          capacity=input_ids.shape[1])
        if state is not None:
            h = state.feed(input_ids)  # (B, t, C)
        elif attention_mask is not None and not bool(attention_mask.all()):
            pad = _left_pad_lengths(attention_mask, input_ids)
            T = input_ids.shape[1]
            positions = (torch.arange(T, device=input_ids.device)[None, :] - pad[:, None]).clamp(min=0)  # (B, T)
            ctx = AttnContext.build(self.model.config, positions, T, self.model.embed.tok.weight.dtype, pad=pad)
            h = self.model.run(input_ids, positions, ctx)
        else:
            h = self.model(input_ids, return_hidden=True)  # (B, T, C)
        logits = F.linear(h, self.model.head_weight)  # (B, T, V)
        loss = None
        if labels is not None:  # transformers convention: labels = input_ids, shifted here
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(logits.device),
                                   ignore_index=-100)
        out = CausalLMOutputWithPast(loss=loss, logits=logits, **{_CACHE_FIELD: state})
        return out if return_dict is not False else out.to_tuple()

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, cache: Any = None,
                                      past_key_values: Any = None, attention_mask: torch.Tensor | None = None,
                                      use_cache: bool = True, **kwargs: Any) -> dict:
        """First step: a new cache sized for the prompt (it grows as tokens come); later steps:
        only the columns the cache has not seen."""
        state = cache if cache is not None else past_key_values
        if not use_cache:
            return {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
        if state is None:
            state = BioGptHealthcareCache(self.model, _left_pad_lengths(attention_mask, input_ids),
                                          capacity=input_ids.shape[1] + 64)
        return {"input_ids": input_ids[:, state.length:], _CACHE_FIELD: state, "use_cache": True}
