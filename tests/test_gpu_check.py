"""The GPU check's logic on the CPU (bench/gpu_check.py): its quick mode end to end, the exit
status without CUDA, and that a device difference or a non-finite loss makes a FAIL line."""
import pytest
import torch

import bench.gpu_check as gpu_check
from bench.gpu_check_setup import SPEC_BY_LABEL, prepare


def test_without_cuda_it_says_so_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 2
    assert "The GPU check needs a CUDA machine" in capsys.readouterr().out


@pytest.mark.slow
def test_cpu_quick_mode_prints_one_line_per_check(tmp_path, capsys):
    status = gpu_check.main(["--device", "cpu", "--quick", "--trainers", "CoOp", "ZeroshotCLIP", "--steps", "2",
                             "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    lines = [line for line in out.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP", "INFO")]
    names = [line.split(":")[0] for line in lines]
    assert names == [
        "PASS  CoOp fp32 tiny CLIP",
        "PASS  CoOp cpu fp32 vs cpu fp32 tiny CLIP",
        "PASS  ZeroshotCLIP eval tiny CLIP",
        "PASS  ZeroshotCLIP cpu fp32 vs cpu fp32 tiny CLIP",
        "INFO  throughput bare encoder tiny CLIP cpu fp32",
        "INFO  throughput CoOp tiny CLIP cpu fp32",
        "SKIP  DDP 2 processes (torchrun)",
        "SKIP  PIL transforms vs torchvision" if "SKIP  PIL" in out else "PASS  PIL transforms vs torchvision",
        "PASS  runtime",
    ]
    assert "loss diff 0, max |logit diff| 0" in lines[1]
    assert "img/s" in lines[4] and "needs 2 GPUs, found 0" in lines[6]
    assert (tmp_path / "gpu_check.log").stat().st_size > 0  # the trainers' own output went there


def test_a_device_difference_and_a_nan_loss_fail(tmp_path, monkeypatch, capsys):
    ws = prepare(str(tmp_path / "ws"), ["tiny"])
    spec = SPEC_BY_LABEL["CoOp"]
    summary = gpu_check.Summary()

    copy = gpu_check.copy_trainable_state

    def copy_then_disturb(src, dst):  # as if the other device computed something else
        copy(src, dst)
        with torch.no_grad():
            dst.model.prompt_learner.ctx.add_(torch.randn_like(dst.model.prompt_learner.ctx))

    monkeypatch.setattr(gpu_check, "copy_trainable_state", copy_then_disturb)
    gpu_check.compare_devices(summary, ws, spec, "tiny", "cpu", str(tmp_path))
    monkeypatch.setattr(gpu_check, "train_steps", lambda trainer, batches: [1.0, float("nan")])
    gpu_check.check_precisions(summary, ws, spec, "tiny", "cpu", str(tmp_path), steps=2, precisions=("fp32",))

    assert summary.failed == 2
    assert summary.lines[0].startswith("FAIL  CoOp cpu fp32 vs cpu fp32 tiny CLIP: loss diff ")
    assert summary.lines[1].startswith("FAIL  CoOp fp32 tiny CLIP: losses [1.0, nan]")
