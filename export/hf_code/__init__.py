"""Files that `python -m export` copies into an exported directory, beside the project's own
model/*.py files. They are not imported from here: their relative imports (`from .decoder import
Decoder`) resolve only in an exported directory, where `transformers` loads them as remote code."""
