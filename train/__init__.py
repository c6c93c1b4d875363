"""Training: Lightning pretraining and fine-tuning on data_prep's shards (`python -m train`).

    from train.run import run                 # run(cfg) with a composed Hydra config
    from common.checkpoint import load_model  # (Decoder, tokenizer, info), Lightning-free
"""
