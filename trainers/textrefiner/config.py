"""TRAINER.TF: TextRefiner's keys, every constant of the method with the reference's value."""
from engine.config import CfgNode


def extend_tf_cfg(cfg, prompt_keys):
    """Add TRAINER.TF. Its ``prompt_keys`` (N_CTX, CSC, CTX_INIT, PREC, CLASS_TOKEN_POSITION) are
    accepted because the reference YAMLs set them; like the reference, the prompt learner reads
    the host's own keys (TRAINER.COOP for the CoOp host)."""
    cfg.TRAINER.TF = CfgNode(
        dict(
            **prompt_keys,
            HOST="CoOp",  # the prompt learner TextRefiner refines (scripts: HOST=...)
            BALANCE=50.0,  # local (semantic) loss weight is 1 / BALANCE   (--loss-factor)
            DISTILL=20.0,  # regularisation loss weight                    (--distill-factor)
            MEMORY_SIZE=25,  # local cache entries                         (--memory-size)
            ALPHA=0.2,  # weight of the cache read in the refined text     (--alpha)
            MOMENTUM=0.8,  # cache write momentum
            TOPK=5,  # patches picked by the CLS attention
            LOCAL_FEATURES=("cls", "topk", "mean"),  # local features fed to the semantic loss
            LAYER=-1,  # visual block whose tokens feed the refiner (only -1 is supported)
        )
    )
    return cfg
