"""An OpenAI-compatible HTTP server for a trained model: `python -m serve checkpoint=<ckpt or
exported folder>`. Requests arriving together are decoded in one batch (engine.py); the API is
app.py; the chat template is in protocol.py. See docs/serving.md."""
