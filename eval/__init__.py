"""Evaluation: BioGPT's benchmark suite (PubMedQA, BC5CDR, DDI, KD-DTI, HoC), perplexity and generation.

Every generative task goes through the same path: a checkpoint writes a prediction file
(`{"id": ..., "prediction": "<generated text>"}` per line), and the scorer reads it back, so a
checkpoint of ours, a converted BioGPT checkpoint and another model's outputs are scored alike.
What each task is (files, formats, answer extraction, scoring) lives in tasks/, shared with train/.
"""
