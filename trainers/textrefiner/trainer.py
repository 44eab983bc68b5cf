"""Trainer "TextRefiner": the refiner on the prompt learner named by TRAINER.TF.HOST."""
from engine import TRAINER_REGISTRY

from .cocoop_host import TextRefinerCoCoOp
from .coop_host import TextRefinerCoOp
from .ivlp_host import TextRefinerIVLP
from .kgcoop_host import TextRefinerKgCoOp
from .maple_host import TextRefinerMaPLe
from .promptkd_host import TextRefinerPromptKD
from .promptsrc_host import TextRefinerPromptSRC

# TRAINER.TF.HOST -> the host adapter (a host is registered here, see docs/EXTENDING.md)
HOSTS = {
    "CoOp": TextRefinerCoOp,
    "PromptKD": TextRefinerPromptKD,
    "IVLP": TextRefinerIVLP,
    "MaPLe": TextRefinerMaPLe,
    "PromptSRC": TextRefinerPromptSRC,
    "CoCoOp": TextRefinerCoCoOp,
    "KgCoOp": TextRefinerKgCoOp,
}


def host_trainer(cfg):
    host = cfg.TRAINER.TF.HOST
    if host not in HOSTS:
        raise ValueError(f'TRAINER.TF.HOST "{host}" is not supported; available hosts: {", ".join(HOSTS)}')
    return HOSTS[host]


@TRAINER_REGISTRY.register()
def TextRefiner(cfg):  # noqa: N802  (registered under the reference's trainer name)
    return host_trainer(cfg)(cfg)


TextRefiner.trainer_class = host_trainer
