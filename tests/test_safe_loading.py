"""Files from others load as data: pickles that would run code are refused, the reference's files still load."""
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

import clip
import datasets  # noqa: F401  (registers the data sets)
from clip.torchscript import TorchScriptFormatError
from clip.torchscript import read_state_dict as read_torchscript
from engine.config import get_cfg_default
from engine.data.datasets import build_dataset
from engine.optim import build_lr_scheduler, build_optimizer
from engine.optim.lr_scheduler import ConstantWarmupScheduler
from engine.utils import TRUST_ENV, UntrustedPickleError, latest_checkpoint, load_checkpoint, resume_from_checkpoint
from engine.utils.safe_pickle import PickledObject
from tests import tiny_run
from reference_files import dassl_modules, forget_dassl
from tools.synthetic_data import make_dataset
from tools.tiny_clip import save_tiny_clip
from trainers.taskres import load_enhanced_projection
from tta.classification.policy import load_coop_context


class WritesMarker:
    """Unpickling this calls open(marker, "w"): the file appears only if the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class RunsShell:
    """Unpickling this calls os.system("touch marker")."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def refused(path, payload):
    """The one error a file holding ``payload``'s callable gets."""
    callable_ = payload.__reduce__()[0]
    return (f'Refused to load "{path}": it holds a pickled {callable_.__module__}.{callable_.__name__}, '
            "which is not among the types")


# ----- refused: checkpoints, split caches, TorchScript archives ---------------------------------------------


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload_class", [RunsShell, WritesMarker])
def test_checkpoint_that_runs_code_is_refused(tmp_path, payload_class, zipped):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pth.tar-1"
    payload = payload_class(marker)
    torch.save({"state_dict": {"ctx": torch.zeros(4, 8)}, "epoch": 1, "scheduler": payload}, path,
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(UntrustedPickleError) as error:
        load_checkpoint(str(path))
    message = str(error.value)
    assert message.startswith(refused(path, payload))
    assert f'{TRUST_ENV}="{path}"' in message and "runs whatever code it holds" in message
    assert not marker.exists()


def test_every_checkpoint_entry_point_refuses_and_resume_does_not_fall_back(tmp_path):
    marker = tmp_path / "marker"
    folder = tmp_path / "prompt_learner"
    folder.mkdir()
    torch.save({"state_dict": {"ctx": torch.zeros(4, 64)}, "epoch": 1}, folder / "model.pth.tar-1")
    evil = folder / "model.pth.tar-2"
    torch.save({"state_dict": {"ctx": torch.zeros(4, 64), "weight": torch.zeros(32, 64)}, "epoch": 2,
                "x": WritesMarker(marker)}, evil)
    (folder / "checkpoint").write_text("model.pth.tar-2\n")
    for load in (lambda: load_coop_context(str(evil), 4, 64),  # tta.py --load
                 lambda: load_enhanced_projection(str(evil), 64, 32),  # TaskRes ENHANCED_BASE
                 lambda: latest_checkpoint(str(folder))):  # resume: never an earlier file past a refused one
        with pytest.raises(UntrustedPickleError, match="Refused to load"):
            load()
    assert not marker.exists()


@pytest.mark.slow
def test_train_py_refuses_a_model_dir_checkpoint_that_runs_code(tmp_path, pets_root, tiny_vit_path):
    marker = tmp_path / "marker"
    model_dir = tmp_path / "downloaded"
    (model_dir / "prompt_learner").mkdir(parents=True)
    evil = model_dir / "prompt_learner" / "model.pth.tar-1"
    torch.save({"state_dict": {"ctx": torch.zeros(4, 64)}, "epoch": 1, "optimizer": RunsShell(marker)}, evil)
    run = tiny_run.train_py(pets_root, str(tmp_path / "out"), tiny_vit_path,
                            flags=["--eval-only", "--model-dir", str(model_dir), "--load-epoch", "1"])
    assert run.returncode != 0
    assert refused(evil, RunsShell(marker)) in run.stdout + run.stderr
    assert not marker.exists()


@pytest.mark.parametrize("file_name", ["split_fewshot/shot_2-seed_1.pkl", "preprocessed.pkl"])
def test_split_pickle_that_runs_code_is_refused(tmp_path, file_name):
    name = "ImageNet" if file_name == "preprocessed.pkl" else "EuroSAT"
    info = make_dataset(name, tmp_path)
    marker = tmp_path / "marker"
    path = os.path.join(info["dataset_dir"], file_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"train": [WritesMarker(marker)], "val": [], "test": []}, f)
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED = str(tmp_path), name, 2, 1
    with pytest.raises(UntrustedPickleError) as error:
        build_dataset(cfg)
    assert str(error.value).startswith(refused(path, WritesMarker(marker)))
    assert not marker.exists()


def test_torchscript_archive_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "ViT-B-16.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ViT-B-16/data.pkl", pickle.dumps(RunsShell(marker), protocol=2))
        archive.writestr("ViT-B-16/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("ViT-B-16/code/__torch__/model.py", "class CLIP(Module):\n  __parameters__ = []\n")
    with pytest.raises(UntrustedPickleError) as error:
        clip.load_state_dict(str(path))
    assert str(error.value).startswith(refused(path, RunsShell(marker)))
    assert not marker.exists()


# ----- the trust opt-in --------------------------------------------------------------------------------------


def test_trusted_files_are_unpickled_in_full(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "marker"
    path = tmp_path / "model.pth.tar-1"
    torch.save({"state_dict": {}, "epoch": 1, "x": WritesMarker(marker)}, path)
    monkeypatch.setenv(TRUST_ENV, str(tmp_path / "another-file"))
    with pytest.raises(UntrustedPickleError):
        load_checkpoint(str(path))
    assert not marker.exists()
    for trusted in (str(path), os.pathsep.join(["/elsewhere", str(tmp_path)])):  # the file, or a folder above it
        monkeypatch.setenv(TRUST_ENV, trusted)
        load_checkpoint(str(path))
        assert marker.exists()
        assert f'Unpickling "{path}" in full (io.open is not on the allow-list; trusted by {TRUST_ENV})' in capsys.readouterr().out
        marker.unlink()


# ----- the reference's files still load ----------------------------------------------------------------------


def _optim_cfg():
    cfg = get_cfg_default().OPTIM
    cfg.update(dict(NAME="sgd", LR=0.002, MAX_EPOCH=10, LR_SCHEDULER="cosine", WARMUP_EPOCH=1,
                    WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5))
    return cfg


class DasslConstantWarmup(ConstantWarmupScheduler):
    """Dassl's wrapper as it pickles: torch's state_dict, which keeps the successor object (with its optimizer)."""

    state_dict = LRScheduler.state_dict


class Ctx(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ctx = torch.nn.Parameter(torch.zeros(4, 8))


def _epochs(model, optimizer, scheduler, count):
    lrs = []
    for _ in range(count):
        lrs.append(optimizer.param_groups[0]["lr"])
        model.ctx.grad = torch.ones_like(model.ctx)
        optimizer.step()
        scheduler.step()
    return lrs


def test_reference_checkpoint_loads_and_resumes_the_schedule(tmp_path):
    """Dassl's layout: the scheduler state holds the successor CosineAnnealingLR and its SGD copy."""
    cfg = _optim_cfg()
    model = Ctx()
    optimizer = build_optimizer(model.parameters(), cfg)
    reference = DasslConstantWarmup(optimizer, CosineAnnealingLR(optimizer, 10.0), 1, 1e-5)
    before = _epochs(model, optimizer, reference, 4)
    folder = tmp_path / "prompt_learner"
    folder.mkdir()
    torch.save({"state_dict": model.state_dict(), "epoch": 4, "optimizer": optimizer.state_dict(),
                "scheduler": reference.state_dict(), "val_result": np.float64(71.25)}, folder / "model.pth.tar-4")
    (folder / "checkpoint").write_text("model.pth.tar-4\n")
    blob = (folder / "model.pth.tar-4").read_bytes()
    assert b"CosineAnnealingLR" in blob and b"torch.optim.sgd" in blob and b"numpy" in blob

    checkpoint = load_checkpoint(str(folder / "model.pth.tar-4"))
    successor = checkpoint["scheduler"]["successor"]
    assert isinstance(successor, PickledObject) and successor.qualified_name == "torch.optim.lr_scheduler.CosineAnnealingLR"
    assert successor.state["optimizer"].qualified_name == "torch.optim.sgd.SGD"
    assert checkpoint["val_result"] == 71.25

    resumed = Ctx()
    optimizer2 = build_optimizer(resumed.parameters(), cfg)
    scheduler2 = build_lr_scheduler(optimizer2, cfg)
    assert resume_from_checkpoint(str(folder), resumed, optimizer2, scheduler2) == 4
    uninterrupted = Ctx()
    optimizer3 = build_optimizer(uninterrupted.parameters(), cfg)
    expected = _epochs(uninterrupted, optimizer3, build_lr_scheduler(optimizer3, cfg), 10)
    assert before == pytest.approx(expected[:4])
    assert _epochs(resumed, optimizer2, scheduler2, 6) == pytest.approx(expected[4:])  # Dassl froze it at 2e-3


def test_dassl_scheduler_and_radam_objects_load_as_records(tmp_path, monkeypatch):
    class RAdam(torch.optim.SGD):
        pass

    class ConstantWarmupScheduler(DasslConstantWarmup):
        pass

    dassl_modules(monkeypatch, {"dassl.optim.radam": {"RAdam": RAdam},
                                "dassl.optim.lr_scheduler": {"ConstantWarmupScheduler": ConstantWarmupScheduler}})
    optimizer = RAdam([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    scheduler = ConstantWarmupScheduler(optimizer, CosineAnnealingLR(optimizer, 10.0), 1, 1e-5)
    path = tmp_path / "model.pth.tar-1"
    torch.save({"state_dict": {"ctx": torch.ones(2)}, "epoch": 1, "scheduler": scheduler}, path)
    blob = path.read_bytes()
    assert b"dassl.optim.lr_scheduler" in blob and b"dassl.optim.radam" in blob
    forget_dassl(monkeypatch)

    loaded = load_checkpoint(str(path))["scheduler"]
    assert loaded.qualified_name == "dassl.optim.lr_scheduler.ConstantWarmupScheduler"
    assert loaded.state["cons_lr"] == 1e-5 and loaded.state["optimizer"].qualified_name == "dassl.optim.radam.RAdam"
    assert torch.equal(loaded.state["optimizer"].state["param_groups"][0]["params"][0], torch.zeros(2))


# ----- TorchScript archives read as data ---------------------------------------------------------------------


class _Extras(torch.nn.Module):
    """What OpenAI's archives hold besides float parameters: fp16, int64 buffers, views, plain attributes."""

    def __init__(self):
        super().__init__()
        self.half_weight = torch.nn.Parameter(torch.randn(3, 2).half())
        self.linear = torch.nn.Linear(2, 3, bias=False)
        self.norm = torch.nn.BatchNorm1d(3)
        self.register_buffer("counter", torch.arange(6))
        self.register_buffer("tail", self.counter[2:])  # a view: one storage for two tensors
        self.register_buffer("transposed", torch.randn(3, 4).t())
        self.mask = torch.ones(2)  # a plain tensor attribute: not in the state dict

    def forward(self, x):
        return self.norm(self.linear(x * self.mask)) + self.half_weight.float().sum() + self.tail.sum()


def _jit_state(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path), map_location="cpu").state_dict()


def _assert_same_state(ours, theirs):
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == value.dtype and ours[key].stride() == value.stride(), key
        assert torch.equal(ours[key], value), key


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_torchscript_reader_equals_jit_load(tmp_path, kind):
    path = save_tiny_clip(str(tmp_path / f"{kind}.pt"), kind=kind, fmt="torchscript", seed=3)
    _assert_same_state(read_torchscript(path), _jit_state(path))


def test_torchscript_reader_keeps_dtypes_views_and_buffers(tmp_path):
    path = tmp_path / "extras.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(_Extras()).save(str(path))
    ours = read_torchscript(str(path))
    _assert_same_state(ours, _jit_state(path))
    assert ours["half_weight"].dtype == torch.float16 and ours["norm.num_batches_tracked"].dtype == torch.int64
    assert "mask" not in ours and "linear.bias" not in ours


def test_clip_load_never_runs_torch_jit(tmp_path, monkeypatch):
    path = save_tiny_clip(str(tmp_path / "vit.pt"), kind="vit", fmt="torchscript", seed=4)
    expected = _jit_state(path)

    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load was called")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    _assert_same_state(clip.load_state_dict(path), expected)


def test_trusted_archive_the_reader_cannot_read_goes_to_torch_jit(tmp_path, monkeypatch, capsys):
    path = save_tiny_clip(str(tmp_path / "vit.pt"), kind="vit", fmt="torchscript", seed=4)

    def unreadable(file):
        raise TorchScriptFormatError("data.pkl holds a list, not a module")

    monkeypatch.setattr(clip.download, "read_torchscript_state_dict", unreadable)
    with pytest.raises(RuntimeError, match=f'cannot be read as data: data.pkl holds a list.*{TRUST_ENV}="{path}" loads it '
                                           "with torch.jit.load, which runs its code"):
        clip.load_state_dict(path)
    monkeypatch.setenv(TRUST_ENV, path)
    _assert_same_state(clip.load_state_dict(path), _jit_state(path))
    assert f'Loading "{path}" with torch.jit.load (trusted by {TRUST_ENV})' in capsys.readouterr().out
