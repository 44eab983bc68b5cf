"""The engine's update: one optimizer / scheduler registered under two names steps once."""
import pytest
import torch

from engine.trainer import TrainerBase


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
