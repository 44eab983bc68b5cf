"""The one declaration per registered model of what its checkpoint file holds and gives back.

A trainer registers each model with a ``CheckpointKeys`` (``register_model(..., keys=...)``):
which state-dict keys are saved, which are left out, which the trainer rebuilds itself (never
loaded), how a foreign state dict is fitted before loading, and the fields beside the state
dict (``ExtraState``: e.g. the TextRefiner cache as ``memory_item``, PromptSRC's GPA sum). Saving
and every load path (resume, evaluation) go through ``file_state`` and ``restore``.
"""
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class ExtraState:
    """A checkpoint field beside the state dict: ``get()`` gives the value saved under ``field``,
    ``set(value)`` restores it. ``missing``: the error message when a file lacks the field (None:
    the field is optional and a file without it restores nothing)."""

    field: str
    get: Callable
    set: Callable
    missing: Optional[str] = None


@dataclass(frozen=True)
class CheckpointKeys:
    """Which state-dict keys of a registered model its checkpoints hold and give back.

    saved: "all" (the module's whole state dict), "trainable" (the parameters that require grad
    and every buffer) or a tuple of key prefixes. unsaved: keys left out of the saved ones.
    rebuilt: saved keys the trainer rebuilds itself (from the class names): never loaded.
    load_unsaved: also load the checkpoint keys this trainer does not save (reference
    checkpoints hold the whole model, frozen weights included, and the reference loads them).
    fit: ``state_dict -> state_dict`` applied to a checkpoint's state dict before it loads (e.g.
    an ImageNet classifier's rows cut to a variant's classes); None loads it as saved.
    extra: the ExtraState fields the file holds besides the state dict.
    """

    saved: object = "all"
    unsaved: tuple = ()
    rebuilt: tuple = ()
    load_unsaved: bool = False
    fit: Optional[Callable] = None
    extra: tuple = ()

    def saved_state(self, module):
        state = module.state_dict()
        if self.saved == "all":
            keys = set(state)
        elif self.saved == "trainable":
            keys = {n for n, p in module.named_parameters() if p.requires_grad}
            keys |= {n for n, _ in module.named_buffers()}
        else:
            keys = {k for k in state if k.startswith(tuple(self.saved))}
        return {k: v for k, v in state.items() if k in keys and k not in self.unsaved}

    def loaded_state(self, module, state_dict):
        """The keys of a checkpoint's state dict that go into ``module``."""
        saved = set(self.saved_state(module))
        skip = set(self.unsaved) | set(self.rebuilt)
        return {k: v for k, v in state_dict.items() if k not in skip and (self.load_unsaved or k in saved)}

    def file_state(self, module):
        """What the model's checkpoint holds besides the run's fields: the saved state dict and the extra fields."""
        return {"state_dict": self.saved_state(module), **{e.field: e.get() for e in self.extra}}

    def restore(self, name, module, checkpoint):
        """Load checkpoint dict ``checkpoint`` into ``module`` (registered as ``name``) and its extra fields.

        The load is not strict, but every trainable parameter the trainer does not rebuild must
        be in the file; a state dict that does not fit (another backbone, class count) is named.
        """
        for extra in self.extra:
            if extra.missing is not None and extra.field not in checkpoint:
                raise KeyError(extra.missing)
        state_dict = checkpoint["state_dict"] if self.fit is None else self.fit(dict(checkpoint["state_dict"]))
        state = self.loaded_state(module, state_dict)
        check_has_trainable(module, state, name, ignored=self.rebuilt)
        try:
            module.load_state_dict(state, strict=False)
        except RuntimeError as e:
            raise RuntimeError(
                f'The checkpoint for "{name}" does not fit this model ({e}). '
                "Was it written with another config (backbone, N_CTX, CSC, number of classes)?"
            ) from None
        for extra in self.extra:
            if extra.field in checkpoint:
                extra.set(checkpoint[extra.field])


def check_has_trainable(model, state_dict, name, ignored=()):
    """A non-strict load must still provide every trainable parameter (but those the trainer rebuilds)."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad and n not in ignored]
    missing = [n for n in trainable if n not in state_dict]
    if missing:
        raise KeyError(
            f'The checkpoint for "{name}" lacks the trainable parameters {missing[:5]}'
            f"{' ...' if len(missing) > 5 else ''} of this trainer; it has keys {list(state_dict)[:5]}. "
            "Was it written by another trainer? Point --model-dir at an output folder of the same trainer."
        )
