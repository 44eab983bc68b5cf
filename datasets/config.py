"""Config keys of the data protocols, added to the default tree (the reference's extend_cfg)."""


def extend_data_cfg(cfg):
    """DATASET.SUBSAMPLE_CLASSES (CoOp's base-to-new protocol), TRAINER.MODAL (PromptKD's) and
    DATASET.PROMPT_TEMPLATE."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    # the hand-written prompt of zero-shot CLIP, KgCoOp and TaskRes, e.g. "a photo of a {}, a type of bird.";
    # "" = the data set's own (ImageFolder's: "a photo of a {}.")
    cfg.DATASET.PROMPT_TEMPLATE = ""
    # PromptKD's data protocol: "base2novel" or "cross" (distillation data, see datasets/splits.py);
    # "" keeps the CoOp protocol. The data sets key on this, never on the trainer's name.
    cfg.TRAINER.MODAL = ""
    return cfg


def prompt_template_override(cfg):
    """DATASET.PROMPT_TEMPLATE ("" when unset), checked to hold one "{}" for the class name."""
    template = cfg.DATASET.get("PROMPT_TEMPLATE", "")
    if template and template.count("{}") != 1:
        raise ValueError(
            f'DATASET.PROMPT_TEMPLATE "{template}" must hold "{{}}" once, where the class name goes '
            '(e.g. "a photo of a {}, a type of bird.")'
        )
    return template
