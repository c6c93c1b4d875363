"""BioGPT-Healthcare decoder: hybrid embedding + local/global attention, pure PyTorch.

    from model import Decoder, ModelConfig
    model = Decoder(ModelConfig.from_name("tiny"))
    logits = model(input_ids)  # (B, T, V)
"""

from .config import ModelConfig, presets
from .decoder import Decoder
from .loss import chunked_cross_entropy
from .vocab import VocabTables, vocab_tables

__all__ = ["Decoder", "ModelConfig", "VocabTables", "chunked_cross_entropy", "presets", "vocab_tables"]
