"""Compatibility keys: in the tree so that Dassl's and the references' YAML files load, read by no code.

A key here is accepted and kept in run.json like any other, but the config dump in log.txt leaves
it out and names only those a run set to another value than the default (they change nothing).
An entry names a leaf key or a whole node.
"""
from yacs.config import CfgNode

from .defaults import DASSL_TRAINER_METHODS

ENGINE_COMPAT_KEYS = (
    "VERSION",
    "INPUT.RANDAUGMENT_N",  # Dassl's RandAugment transforms, which no CoOp-family config uses
    "INPUT.RANDAUGMENT_M",
    "DATASET.NUM_LABELED",  # semi-supervised and CIFAR / STL-10 protocols of Dassl's own data sets
    "DATASET.VAL_PERCENT",
    "DATASET.STL10_FOLD",
    "DATASET.CIFAR_C_TYPE",
    "DATASET.CIFAR_C_LEVEL",
    "DATASET.ALL_AS_UNLABELED",
    "MODEL.HEAD",  # Dassl's MLP head (--head sets its NAME); CLIP trainers have none
    "TRAIN.COUNT_ITER",  # Dassl's TrainerXU epoch length; TrainerX counts train_x batches
    *(f"TRAINER.{name}" for name in DASSL_TRAINER_METHODS),  # Dassl's DA / DG / SSL trainers
)


def is_compat(key, compat_keys):
    return any(key == c or key.startswith(c + ".") for c in compat_keys)


def _leaves(node, prefix=""):
    for k, v in node.items():
        if isinstance(v, CfgNode):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _lookup(node, key):
    for part in key.split("."):
        if not isinstance(node, CfgNode) or part not in node:
            return None
        node = node[part]
    return node


def without_compat(cfg, compat_keys):
    """A copy of ``cfg`` without the compatibility keys (a node left empty goes too)."""
    shown = cfg.clone()
    shown.defrost()

    def prune(node, prefix):
        for k in list(node):
            key = f"{prefix}{k}"
            if is_compat(key, compat_keys):
                del node[k]
            elif isinstance(node[k], CfgNode):
                prune(node[k], key + ".")
                if not node[k]:
                    del node[k]

    prune(shown, "")
    return shown


def changed_compat(cfg, defaults, compat_keys):
    """``[(key, value)]`` (by key) of the compatibility keys ``cfg`` sets to another value than ``defaults``."""
    return sorted((k, v) for k, v in _leaves(cfg) if is_compat(k, compat_keys) and v != _lookup(defaults, k))


def config_dump(cfg, defaults, compat_keys):
    """The config as log.txt shows it: the keys code reads, then one line on the compatibility keys."""
    n_compat = sum(1 for k, _ in _leaves(cfg) if is_compat(k, compat_keys))
    changed = changed_compat(cfg, defaults, compat_keys)
    line = (f"({n_compat} compatibility keys left out: accepted so that Dassl's and the references' YAML "
            f"files load, read by no code")
    if changed:
        line += "; set here, with no effect: " + ", ".join(f"{k}={v!r}" for k, v in changed)
    return f"{without_compat(cfg, compat_keys)}\n{line})"
