"""Share a trained model: `python -m export checkpoint=<ckpt> out_dir=<dir>` writes a folder that
`transformers` loads (`AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)`,
`AutoTokenizer.from_pretrained(dir)`) with a model card; `load_exported(dir)` reads one back as
(Decoder, Tokenizer, info), the triple `common.checkpoint.load_model` returns. See docs/serving.md."""

from .hf import ExportError, is_exported, load_exported

__all__ = ["ExportError", "is_exported", "load_exported"]
