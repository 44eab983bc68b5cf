import pytest
import torch

from engine.config import get_cfg_default
from engine.optim import RAdam, build_lr_scheduler, build_optimizer

# lr of each epoch for LR 0.002, 10 epochs, cosine, 1 constant warmup epoch at 1e-5
# (the reference spec's table: epoch 0 at 1e-5, then L(1+cos(pi(k-1)/E))/2)
SPEC_TABLE = [1e-5, 2.000e-3, 1.951e-3, 1.809e-3, 1.588e-3, 1.309e-3, 1.000e-3, 6.910e-4, 4.122e-4, 1.910e-4]


def _optim_cfg(**overrides):
    cfg = get_cfg_default().OPTIM
    cfg.update(dict(NAME="sgd", LR=0.002, MAX_EPOCH=10, LR_SCHEDULER="cosine", WARMUP_EPOCH=1,
                    WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5))
    cfg.update(overrides)
    return cfg


def _epoch_lrs(cfg, epochs):
    p = torch.nn.Parameter(torch.zeros(2))
    optim = build_optimizer([p], cfg)
    sched = build_lr_scheduler(optim, cfg)
    lrs = []
    for _ in range(epochs):
        lrs.append(optim.param_groups[0]["lr"])
        optim.step()
        sched.step()  # once per epoch, after the last batch
    return lrs, optim, sched


def test_coop_textrefiner_schedule_matches_spec_table():
    lrs, _, _ = _epoch_lrs(_optim_cfg(), 10)
    assert lrs == pytest.approx(SPEC_TABLE, rel=1e-3)


@pytest.mark.parametrize("lr", [0.002, 0.001, 0.0008, 0.005])
def test_cosine_formula_all_epochs(lr):
    import math

    lrs, _, _ = _epoch_lrs(_optim_cfg(LR=lr, MAX_EPOCH=20), 20)
    expected = [1e-5] + [lr * (1 + math.cos(math.pi * (k - 1) / 20)) / 2 for k in range(1, 20)]
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_linear_warmup():
    lrs, _, _ = _epoch_lrs(_optim_cfg(WARMUP_EPOCH=3, WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-5), 5)
    assert lrs[:4] == pytest.approx([1e-5, 0.002 / 3, 2 * 0.002 / 3, 0.002])


def test_resume_keeps_driving_the_real_optimizer():
    """Dassl's pickled successor froze the lr after resume; ours continues the schedule."""
    cfg = _optim_cfg()
    lrs, optim, sched = _epoch_lrs(cfg, 4)
    state = sched.state_dict()
    assert not any(isinstance(v, torch.optim.lr_scheduler.LRScheduler) for v in state.values())

    p = torch.nn.Parameter(torch.zeros(2))
    optim2 = build_optimizer([p], cfg)
    sched2 = build_lr_scheduler(optim2, cfg)
    optim2.load_state_dict(optim.state_dict())
    sched2.load_state_dict(state)
    resumed = []
    for _ in range(6):
        resumed.append(optim2.param_groups[0]["lr"])
        optim2.step()
        sched2.step()
    assert resumed == pytest.approx(SPEC_TABLE[4:], rel=1e-3)


def test_step_schedules_and_errors():
    lrs, _, _ = _epoch_lrs(_optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=(3,), WARMUP_EPOCH=-1, LR=0.1), 7)
    assert lrs == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001])
    lrs, _, _ = _epoch_lrs(_optim_cfg(LR_SCHEDULER="multi_step", STEPSIZE=(1, 3), WARMUP_EPOCH=-1, LR=0.1), 4)
    assert lrs == pytest.approx([0.1, 0.01, 0.01, 0.001])
    with pytest.raises(ValueError, match="scheduler must be one of"):
        _epoch_lrs(_optim_cfg(LR_SCHEDULER="poly"), 1)
    with pytest.raises(ValueError, match="WARMUP_TYPE"):
        _epoch_lrs(_optim_cfg(WARMUP_TYPE="exp"), 1)
    with pytest.raises(ValueError, match="optim must be one of"):
        _epoch_lrs(_optim_cfg(NAME="lamb"), 1)


def test_optimizer_defaults_are_dassls():
    p = torch.nn.Parameter(torch.zeros(2))
    sgd = build_optimizer([p], _optim_cfg())
    group = sgd.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["nesterov"], group["dampening"]) == (0.9, 5e-4, False, 0)
    for name, cls in [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
                      ("radam", RAdam), ("amsgrad", torch.optim.Adam)]:
        opt = build_optimizer([p], _optim_cfg(NAME=name))
        assert isinstance(opt, cls)
    assert build_optimizer([p], _optim_cfg(NAME="amsgrad")).param_groups[0]["amsgrad"] is True


def test_radam_first_steps_are_sgd_with_momentum():
    """N_sma < 5 for the first steps: update = lr * exp_avg / (1 - beta1^t) (degenerated to SGD)."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RAdam([p], lr=0.1, betas=(0.9, 0.999), weight_decay=0)
    grad = torch.tensor([0.5, 1.0])
    p.grad = grad.clone()
    opt.step()
    exp_avg = 0.1 * grad
    expected = torch.tensor([1.0, -2.0]) - 0.1 * exp_avg / (1 - 0.9)
    assert torch.allclose(p.detach(), expected)


def test_staged_lr_groups():
    model = torch.nn.Sequential()
    model.add_module("backbone", torch.nn.Linear(2, 2))
    model.add_module("head", torch.nn.Linear(2, 2))
    opt = build_optimizer(model, _optim_cfg(STAGED_LR=True, NEW_LAYERS=("head",), BASE_LR_MULT=0.1))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0002, 0.002])
