import os

import numpy as np
import pytest
import torch

from engine.config import get_cfg_default
from engine.data.samplers import RandomClassSampler, RandomDomainSampler, SeqDomainSampler, build_sampler
from engine.evaluation import Classification
from engine.metrics import compute_accuracy
from engine.utils import MetricMeter, load_checkpoint, save_checkpoint, setup_logger
from engine.utils.logger import restore_stdout
from engine.utils.tools import atomic_write, check_availability, read_image


def test_result_block_is_exact(capsys):
    cfg = get_cfg_default()
    cfg.TEST.PER_CLASS_RESULT = True
    ev = Classification(cfg, lab2cname={0: "cat", 1: "dog", 2: "cow"})
    ev.process(torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]]), torch.tensor([0, 1, 1]))
    res = ev.evaluate()
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == ["=> result", "* total: 3", "* correct: 2", "* accuracy: 66.7%", "* error: 33.3%",
                       "* macro_f1: 66.7%"]
    assert out[6] == "=> per-class result"
    assert out[7] == "* class: 0 (cat)\ttotal: 1\tcorrect: 1\tacc: 100.0%"
    assert out[-1] == "* average: 75.0%"
    assert list(res)[0] == "accuracy" and res["accuracy"] == pytest.approx(200 / 3)


def test_thousands_separator(capsys):
    ev = Classification(get_cfg_default())
    n = 1234
    ev.process(torch.eye(2).repeat(n // 2, 1), torch.tensor([0, 1] * (n // 2)))
    ev.evaluate()
    assert "* total: 1,234" in capsys.readouterr().out


def test_compute_accuracy_and_meter():
    out = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert compute_accuracy(out, torch.tensor([1, 0, 0, 0]))[0].item() == 75.0
    m = MetricMeter()
    m.update({"loss": 1.0, "acc": 50.0})
    m.update({"loss": torch.tensor(3.0), "acc": 100.0})
    assert str(m) == "loss 3.0000 (2.0000) acc 100.0000 (75.0000)"
    with pytest.raises(TypeError):
        m.update([1])


def test_check_availability_suggests():
    with pytest.raises(ValueError, match=r"do you mean \[CoOp\]"):
        check_availability("Coop", ["CoOp", "ZeroshotCLIP"])


class _Item:
    def __init__(self, label, domain):
        self.label, self.domain = label, domain


def test_custom_samplers_and_unknown():
    data = [_Item(i % 4, i % 2) for i in range(32)]
    s = RandomClassSampler(data, batch_size=8, n_ins=2)
    idxs = list(iter(s))
    assert len(idxs) % 8 == 0 and len(set(idxs)) == len(idxs)
    s = RandomDomainSampler(data, batch_size=8, n_domain=2)
    assert len(s) == len(list(iter(s)))
    assert len(SeqDomainSampler(data, batch_size=4)) > 0
    with pytest.raises(ValueError, match="Unknown sampler type: Foo"):
        build_sampler("Foo", data_source=data)


def test_checkpoint_atomic_save_and_pointer(tmp_path):
    state = {"state_dict": {"module.w": torch.ones(2)}, "epoch": 3, "optimizer": None, "scheduler": None,
             "val_result": None}
    save_checkpoint(state, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.pth.tar-3"]
    assert (tmp_path / "checkpoint").read_text() == "model.pth.tar-3\n"
    ck = load_checkpoint(str(tmp_path / "model.pth.tar-3"))
    assert list(ck["state_dict"]) == ["w"] and ck["epoch"] == 3
    save_checkpoint(state, str(tmp_path), model_name="model-best.pth.tar")
    assert (tmp_path / "checkpoint").read_text() == "model-best.pth.tar\n"
    with pytest.raises(FileNotFoundError, match="File is not found"):
        load_checkpoint(str(tmp_path / "nothing"))


def test_atomic_write_keeps_the_old_file_when_a_write_is_interrupted(tmp_path):
    path = tmp_path / "sub" / "features.npz"  # the folder is made

    def write(payload, interrupt=False):
        def writer(tmp):
            with open(tmp, "wb") as f:
                f.write(payload)
            if interrupt:
                raise KeyboardInterrupt  # Ctrl-C after half the work

        return writer

    atomic_write(str(path), write(b"first"))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), write(b"second", interrupt=True))
    assert path.read_bytes() == b"first" and os.listdir(path.parent) == ["features.npz"]


def test_logger_tees_and_never_overwrites(tmp_path, capsys):
    setup_logger(str(tmp_path))
    print("first run")
    restore_stdout()
    setup_logger(str(tmp_path))
    print("second run")
    restore_stdout()
    logs = sorted(os.listdir(tmp_path))
    assert logs[0] == "log.txt" and logs[1].startswith("log.txt-") and len(logs) == 2
    assert (tmp_path / "log.txt").read_text() == "first run\n"
    assert (tmp_path / logs[1]).read_text() == "second run\n"
    assert "first run" in capsys.readouterr().out


def test_read_image_errors(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(RuntimeError, match="broken.jpg.*corrupt"):
        read_image(str(bad))
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(str(tmp_path / "missing.jpg"))


def test_macro_f1_and_confusion_matrix_equal_scikit_learns():
    from sklearn.metrics import confusion_matrix, f1_score

    from engine.evaluation import macro_f1_score, normalized_confusion_matrix

    rng = np.random.default_rng(0)
    for n_classes, n in ((2, 7), (5, 40), (13, 300)):
        y_true = rng.integers(0, n_classes, n).tolist()
        y_pred = rng.integers(0, n_classes + 2, n).tolist()  # some predictions outside the true labels
        expected = f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0)
        assert abs(macro_f1_score(y_true, y_pred) - expected) < 1e-12
        np.testing.assert_allclose(
            normalized_confusion_matrix(y_true, y_pred), confusion_matrix(y_true, y_pred, normalize="true")
        )
