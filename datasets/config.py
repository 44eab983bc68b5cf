"""Config keys of the data protocols, added to the default tree (the reference's extend_cfg)."""


def extend_data_cfg(cfg):
    """DATASET.SUBSAMPLE_CLASSES (CoOp's base-to-new protocol) and TRAINER.MODAL (PromptKD's)."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    # PromptKD's data protocol: "base2novel" or "cross" (distillation data, see datasets/splits.py);
    # "" keeps the CoOp protocol. The data sets key on this, never on the trainer's name.
    cfg.TRAINER.MODAL = ""
    return cfg
