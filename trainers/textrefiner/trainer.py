"""Trainer "TextRefiner": the refiner on the prompt learner named by TRAINER.TF.HOST."""
from engine import TRAINER_REGISTRY

from .coop_host import TextRefinerCoOp
from .promptkd_host import TextRefinerPromptKD

HOSTS = {"CoOp": TextRefinerCoOp, "PromptKD": TextRefinerPromptKD}


@TRAINER_REGISTRY.register()
def TextRefiner(cfg):  # noqa: N802  (registered under the reference's trainer name)
    host = cfg.TRAINER.TF.HOST
    if host not in HOSTS:
        raise ValueError(f'TRAINER.TF.HOST "{host}" is not supported; available hosts: {", ".join(HOSTS)}')
    return HOSTS[host](cfg)
