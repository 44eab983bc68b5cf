"""Config keys the CoOp-family trainers add to the default tree (the reference's extend_cfg)."""
from engine.config import CfgNode


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
    """Add TRAINER.COOP / COCOOP / TF / PROMPTSRC / PROMPTKD / MODAL and DATASET.SUBSAMPLE_CLASSES
    with the reference defaults.

    TRAINER.TF also holds every TextRefiner constant (reference values), so ablations are
    YAML edits. Its N_CTX/CSC/CTX_INIT/PREC/CLASS_TOKEN_POSITION exist because the
    reference YAMLs may set them; like the reference, the prompt learner reads TRAINER.COOP.
    """
    cfg.TRAINER.COOP = _node(**_prompt_keys())
    cfg.TRAINER.COCOOP = _node(N_CTX=16, CTX_INIT="", PREC="fp16")
    # TaskRes keeps the reference's spelling and its unused prompt keys; the residual scale
    # (alpha) defaults to the reference train.py's 1.0 (its scripts pass 0.5, 1.0 for Flowers)
    cfg.TRAINER.TaskRes = _node(**_prompt_keys(), RESIDUAL_SCALE=1.0, ENHANCED_BASE="none")
    cfg.TRAINER.TF = _node(
        **_prompt_keys(),
        HOST="CoOp",  # the prompt learner TextRefiner refines
        BALANCE=50.0,  # local (semantic) loss weight is 1 / BALANCE   (--loss-factor)
        DISTILL=20.0,  # regularisation loss weight                    (--distill-factor)
        MEMORY_SIZE=25,  # local cache entries                         (--memory-size)
        ALPHA=0.2,  # weight of the cache read in the refined text     (--alpha)
        MOMENTUM=0.8,  # cache write momentum
        TOPK=5,  # patches picked by the CLS attention
        LOCAL_FEATURES=("cls", "topk", "mean"),  # local features fed to the semantic loss
        LAYER=-1,  # visual block whose tokens feed the refiner (only -1 is supported)
    )
    cfg.TRAINER.PROMPTSRC = _node(**_ivlp_keys(), TEXT_LOSS_WEIGHT=25, IMAGE_LOSS_WEIGHT=10, GPA_MEAN=15, GPA_STD=1)
    cfg.TRAINER.PROMPTKD = _node(
        **_ivlp_keys(),
        PROJECT_LAYER=2,  # read by no code, as in the reference
        CE_WEIGHT=0.0,  # read by no code, as in the reference
        KD_WEIGHT=1.0,
        TEMPERATURE=1.0,
        TEACHER_NAME="ViT-L/14",  # the teacher's CLIP backbone
        TEACHER_BACKBONE_PATH="",  # a local file of the teacher's CLIP weights (else the download cache)
        # the PromptSRC teacher checkpoint; "" = the reference's place under teacher_model/ (see README)
        TEACHER_CKPT="",
    )
    # PromptKD's data protocol: "base2novel" or "cross" (distillation data, see datasets/splits.py);
    # "" keeps the CoOp protocol. The data sets key on this, never on the trainer's name.
    cfg.TRAINER.MODAL = ""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    return cfg
