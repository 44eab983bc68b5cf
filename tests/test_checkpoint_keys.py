"""engine/checkpoint: one CheckpointKeys per registered model decides what its files hold and give
back (saved / left-out / rebuilt keys, a fit of foreign state dicts, extra fields), through the
engine's save_model / resume_model_if_exist / load_model."""
import pytest
import torch
from torch import nn

from engine import TrainerBase
from engine.checkpoint import CheckpointKeys, ExtraState
from engine.checkpoint.files import save_checkpoint
from engine.utils import load_checkpoint
from engine.utils.torchtools import save_checkpoint as dassl_save_checkpoint


class Box:
    """A value saved beside a state dict."""

    def __init__(self, value):
        self.value = value

    def field(self, name, missing=None):
        return ExtraState(name, lambda: self.value, lambda v: setattr(self, "value", v), missing=missing)


def _learner():
    module = nn.Linear(3, 2)
    module.register_buffer("prefix", torch.arange(4.0))  # rebuilt by the trainer: never loaded
    return module


def _trainer(module, keys):
    trainer = TrainerBase()
    optim = torch.optim.SGD(module.parameters(), lr=0.1)
    trainer.register_model("prompt_learner", module, optim, None, keys=keys)
    return trainer


def test_dassl_names_are_the_engine_checkpoint_functions():
    assert dassl_save_checkpoint is save_checkpoint


def test_saved_extra_fields_round_trip_and_rebuilt_keys_are_not_loaded(tmp_path):
    torch.manual_seed(0)
    box = Box(torch.randn(5, 2))
    keys = CheckpointKeys("all", rebuilt=("prefix",), extra=(box.field("memory_item", missing="no cache"),))
    source = _learner()
    _trainer(source, keys).save_model(0, str(tmp_path))
    saved = load_checkpoint(str(tmp_path / "prompt_learner" / "model.pth.tar-1"))
    assert list(saved["state_dict"]) == ["weight", "bias", "prefix"]
    assert torch.equal(saved["memory_item"], box.value) and saved["epoch"] == 1

    target, target_box = _learner(), Box(torch.zeros(5, 2))
    target.prefix.fill_(7.0)
    keys = CheckpointKeys("all", rebuilt=("prefix",), extra=(target_box.field("memory_item", missing="no cache"),))
    assert _trainer(target, keys).resume_model_if_exist(str(tmp_path)) == 1
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    assert torch.equal(target.prefix, torch.full((4,), 7.0))  # rebuilt: kept
    assert torch.equal(target_box.value, box.value)


def test_a_required_extra_field_missing_is_named_and_an_optional_one_is_skipped(tmp_path):
    module = _learner()
    save_checkpoint({"state_dict": module.state_dict(), "epoch": 2}, str(tmp_path / "prompt_learner"), model_name="model-best.pth.tar")
    required = _trainer(_learner(), CheckpointKeys(extra=(Box(None).field("memory_item", missing="The file has no cache"),)))
    with pytest.raises(KeyError, match="The file has no cache"):
        required.load_model(str(tmp_path))
    box = Box("kept")
    optional = _trainer(_learner(), CheckpointKeys(extra=(box.field("gpa"),)))
    optional.load_model(str(tmp_path))
    assert box.value == "kept"


def test_fit_adapts_a_foreign_state_dict_before_it_loads(tmp_path):
    wide = nn.Linear(3, 4)
    save_checkpoint({"state_dict": wide.state_dict(), "epoch": 1}, str(tmp_path / "prompt_learner"), model_name="model-best.pth.tar")
    rows = lambda state: {k: v[:2] for k, v in state.items()}  # noqa: E731 - first two classes
    narrow = nn.Linear(3, 2)
    _trainer(narrow, CheckpointKeys(fit=rows)).load_model(str(tmp_path))
    assert torch.equal(narrow.weight, wide.weight[:2]) and torch.equal(narrow.bias, wide.bias[:2])
    with pytest.raises(RuntimeError, match='The checkpoint for "prompt_learner" does not fit this model'):
        _trainer(nn.Linear(3, 2), CheckpointKeys()).load_model(str(tmp_path))


def test_a_trainable_parameter_missing_from_the_file_is_refused(tmp_path):
    save_checkpoint({"state_dict": {"bias": torch.zeros(2)}, "epoch": 1}, str(tmp_path / "prompt_learner"), model_name="model-best.pth.tar")
    with pytest.raises(KeyError, match="lacks the trainable parameters .*weight"):
        _trainer(nn.Linear(3, 2), CheckpointKeys()).load_model(str(tmp_path))
