"""The engine's update: one optimizer / scheduler registered under two names steps once."""
import pytest
import torch

from engine.step import Precision, TrainingStep
from engine.trainer import TrainerBase
from engine.utils.faults import NonFiniteLossError


def _trainer():
    trainer = TrainerBase()
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    optim = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(optim, step_size=1, gamma=0.5)
    trainer.register_model("prompt_learner", torch.nn.Linear(1, 1), optim, sched)
    trainer.register_model("Memory", torch.nn.Linear(1, 1), optim, sched)
    return trainer, w, optim


def test_shared_optimizer_and_scheduler_step_once():
    trainer, w, optim = _trainer()
    trainer.model_backward_and_update((w * w).sum())  # grad 2w
    torch.testing.assert_close(w.detach(), torch.tensor([0.8, 1.6]))
    trainer.update_lr()
    assert optim.param_groups[0]["lr"] == pytest.approx(0.05)


def test_non_finite_loss_stops_the_update():
    trainer, w, _ = _trainer()
    with pytest.raises(FloatingPointError, match="Loss is infinite or NaN"):
        trainer.model_backward_and_update(w.sum() * float("nan"))
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, 2.0]))


# ----- engine/step.py: the one training step ---------------------------------------------------
def _step_parts():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optim = torch.optim.SGD([w], lr=0.5)
    step = TrainingStep(Precision(), on_skipped_update=lambda: None)

    def losses(x, y):  # mean squared error of x @ w against y, and one logged part
        err = x @ w - y
        return (err * err).mean(), {"abs": err.abs().mean().detach()}

    return w, optim, step, losses


def test_step_with_micro_batches_equals_the_whole_batch_update():
    x, y = torch.randn(6, 2, generator=torch.Generator().manual_seed(0)), torch.arange(6.0)
    w, optim, step, losses = _step_parts()
    whole = step.run((x, y), losses, [optim], 1, torch.device("cpu"))
    w_whole = w.detach().clone()
    w2, optim2, step2, losses2 = _step_parts()
    split = step2.run((x, y), losses2, [optim2], 4, torch.device("cpu"))  # chunks of 2, 2, 1, 1
    torch.testing.assert_close(w2.detach(), w_whole)
    assert split.keys() == whole.keys() == {"loss", "abs"}
    for k in whole:
        assert split[k] == pytest.approx(whole[k], rel=1e-6)
    # recomputation: one SGD step on the batch's mean squared error
    w0 = torch.tensor([1.0, -2.0])
    grad = 2 * x.t() @ (x @ w0 - y) / len(y)
    torch.testing.assert_close(w_whole, w0 - 0.5 * grad)


def test_step_guard_stops_before_any_update_and_names_the_parts():
    w, optim, step, _ = _step_parts()

    def nan_losses(x):
        return (x @ w).mean() * float("nan"), {"part": torch.tensor(1.0)}

    with pytest.raises(NonFiniteLossError) as err:
        step.run((torch.ones(3, 2),), nan_losses, [optim], 1, torch.device("cpu"))
    assert err.value.parts["part"] == 1.0 and err.value.parts["loss"] != err.value.parts["loss"]  # NaN
    torch.testing.assert_close(w.detach(), torch.tensor([1.0, -2.0]))


def test_precision_resolves_to_fp32_on_cpu_and_rejects_unknown_names(capsys):
    precision = Precision.resolve("amp", torch.device("cpu"))
    assert (precision.name, precision.scaler) == ("fp32", None)
    assert "PREC amp needs CUDA: running in fp32 on cpu" in capsys.readouterr().out
    with pytest.raises(ValueError, match='PREC must be one of'):
        Precision.resolve("bf16", torch.device("cpu"))
