"""The config tree's extension (the reference's extend_cfg): each method's keys, TextRefiner's and the data protocol's from their owners."""
from datasets.config import extend_data_cfg
from engine.config import CfgNode
from engine.config.compat import ENGINE_COMPAT_KEYS

from .textrefiner.config import extend_tf_cfg


def _node(**kwargs):
    return CfgNode(kwargs)


def _prompt_keys():
    return dict(N_CTX=16, CSC=False, CTX_INIT="", PREC="fp16", CLASS_TOKEN_POSITION="end")


def _ivlp_keys():
    """Independent vision-language prompts: context length and depth per branch."""
    return dict(
        N_CTX_VISION=4, N_CTX_TEXT=4, CTX_INIT="a photo of a", PREC="fp16", PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=9
    )


def extend_cfg(cfg):
    """Add every method's TRAINER.<KEY> node (reference defaults), TextRefiner's TRAINER.TF and the
    data protocol keys (DATASET.SUBSAMPLE_CLASSES, TRAINER.MODAL)."""
    cfg.TRAINER.COOP = _node(**_prompt_keys(), W=1.0)  # W: KgCoOp's knowledge-guided loss weight
    cfg.TRAINER.COCOOP = _node(N_CTX=16, CTX_INIT="", PREC="fp16")
    # TaskRes keeps the reference's spelling and its unused prompt keys; the residual scale
    # (alpha) defaults to the reference train.py's 1.0 (its scripts pass 0.5, 1.0 for Flowers)
    cfg.TRAINER.TaskRes = _node(**_prompt_keys(), RESIDUAL_SCALE=1.0, ENHANCED_BASE="none")
    extend_tf_cfg(cfg, _prompt_keys())
    cfg.TRAINER.IVLP = _node(
        N_CTX_VISION=2, N_CTX_TEXT=2, CTX_INIT="a photo of a", PREC="fp16", PROMPT_DEPTH_VISION=9, PROMPT_DEPTH_TEXT=9
    )
    cfg.TRAINER.MAPLE = _node(N_CTX=2, CTX_INIT="a photo of a", PREC="fp16", PROMPT_DEPTH=9)
    cfg.TRAINER.PROMPTSRC = _node(**_ivlp_keys(), TEXT_LOSS_WEIGHT=25, IMAGE_LOSS_WEIGHT=10, GPA_MEAN=15, GPA_STD=1)
    cfg.TRAINER.PROMPTKD = _node(
        **_ivlp_keys(),
        PROJECT_LAYER=2,  # compatibility key (compat_keys): read by no code, as in the reference
        CE_WEIGHT=0.0,  # compatibility key: read by no code, as in the reference
        KD_WEIGHT=1.0,
        TEMPERATURE=1.0,
        TEACHER_NAME="ViT-L/14",  # the teacher's CLIP backbone
        TEACHER_BACKBONE_PATH="",  # a local file of the teacher's CLIP weights (else the download cache)
        # the PromptSRC teacher checkpoint; "" = the reference's place under teacher_model/ (docs/METHODS.md)
        TEACHER_CKPT="",
    )
    extend_data_cfg(cfg)
    return cfg


def compat_keys():
    """Every compatibility key (engine/config/compat.py): the engine's, and the method keys that the
    references' YAML files set and no code reads: TextRefiner's prompt keys (its prompt learner reads
    the host's), TaskRes's prompt keys (it has no prompt; PREC is read), PromptKD's two unused keys."""
    prompt = tuple(_prompt_keys())
    return (
        ENGINE_COMPAT_KEYS
        + tuple(f"TRAINER.TF.{k}" for k in prompt)
        + tuple(f"TRAINER.TaskRes.{k}" for k in prompt if k != "PREC")
        + ("TRAINER.PROMPTKD.PROJECT_LAYER", "TRAINER.PROMPTKD.CE_WEIGHT")
    )
