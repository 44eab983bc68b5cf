"""TRAIN.GRAD_ACCUM: micro-batches whose gradients add up to the whole batch's update."""

import pytest
import torch

import train
from engine import build_trainer
from engine.utils import set_random_seed
from engine.utils.micro_batches import micro_batches
from tests import tiny_run


def test_micro_batches_split_the_batch_tensors_and_weight_by_size():
    image, label, text = torch.arange(5 * 2).reshape(5, 2), torch.arange(5), torch.zeros(3, 7)
    chunks = micro_batches((image, label, text), 3)
    assert [w for w, _ in chunks] == [2 / 5, 2 / 5, 1 / 5]
    assert torch.equal(torch.cat([c[0] for _, c in chunks]), image)
    assert [c[1].tolist() for _, c in chunks] == [[0, 1], [2, 3], [4]]
    assert all(c[2] is text for _, c in chunks)  # not of batch size: shared
    assert micro_batches((image, label), 1) == [(None, (image, label))]
    with pytest.raises(ValueError, match="TRAIN.GRAD_ACCUM 6 is larger than the batch \\(5 items\\)"):
        micro_batches((image, label), 6)


def _coop(root, clip_path, out, accum):
    args = tiny_run.parse(root, out, clip_path, "CoOp", "CoOp/vit_b16_ep50_ctxv1", "OPTIM.LR", "0.5",
                          "TRAIN.GRAD_ACCUM", str(accum), epochs=None)
    cfg = train.setup_cfg(args)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def test_accumulated_update_equals_the_whole_batch_update(tmp_path, pets_root, tiny_vit_path):
    whole = _coop(pets_root, tiny_vit_path, str(tmp_path / "a"), 1)
    accumulated = _coop(pets_root, tiny_vit_path, str(tmp_path / "b"), 3)  # micro-batches of 2, 1, 1
    ctx0 = whole.model.prompt_learner.ctx.detach().clone()
    assert torch.equal(ctx0, accumulated.model.prompt_learner.ctx)
    batch = next(iter(whole.train_loader_x))
    for trainer in (whole, accumulated):
        trainer.set_model_mode("train")
        for _ in range(2):  # the second step also checks the momentum buffer
            summary = trainer.forward_backward(batch)
        trainer.summary = summary
    ctx_a, ctx_b = whole.model.prompt_learner.ctx, accumulated.model.prompt_learner.ctx
    assert not torch.equal(ctx_a, ctx0)
    torch.testing.assert_close(ctx_b, ctx_a, rtol=1e-5, atol=1e-6)
    assert accumulated.summary["loss"] == pytest.approx(whole.summary["loss"], rel=1e-5)
    assert accumulated.summary["acc"] == pytest.approx(whole.summary["acc"])
