"""Device and precision hazards that bite on CUDA, covered on the CPU: checkpoints load onto the
CPU and every restore path moves them to the model; module tensors move with ``.to()``; the
GradScaler names the updates it skips; frozen teachers and reward models hold no autograd state.

The "meta" device stands in for CUDA: a tensor that stays on the CPU when the model moves to
"meta" would have stayed on the CPU when it moved to CUDA.
"""
import torch

import clip
import tests.test_promptkd_parts as kd_parts
from engine.config import CfgNode
from engine.step import Precision
from engine.trainer import TrainerBase
from engine.utils import load_checkpoint
from tools.tiny_clip import tiny_clip_model
from trainers.gpa import PromptAverager
from trainers.ivlp import IVLPCLIP
from tta.classification.adapt import Adapter
from tta.classification.policy import PromptPolicy
from tta.core.rewards import CLIPReward

NAMES = ["cat", "dog", "sea lion"]


# ----- checkpoints load onto the CPU -------------------------------------------------------------
def test_checkpoints_load_onto_the_cpu_even_where_cuda_exists(tmp_path, monkeypatch):
    path = tmp_path / "model.pth.tar-1"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 1}, path)
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "load", lambda *a, **kw: seen.append(kw["map_location"]) or real_load(*a, **kw))
    assert load_checkpoint(str(path))["epoch"] == 1
    assert seen == ["cpu"]  # not the device each tensor was saved from (rank 0's GPU under DDP)


def test_gpa_sum_is_restored_next_to_the_prompts_in_fp32():
    prompts = {"ctx": torch.zeros(2, 3, device="meta", dtype=torch.float16)}  # a model moved to the GPU
    saved = {"total": {"ctx": torch.full((2, 3), 0.25, dtype=torch.float64)}, "epochs": [0]}  # loaded on the CPU
    gpa = PromptAverager([0.5, 0.5])
    gpa.load_state_dict(saved, prompts)
    assert gpa.total["ctx"].device.type == "meta" and gpa.total["ctx"].dtype == torch.float32
    gpa.add(1, prompts)  # the next epoch adds on the prompts' device
    assert gpa.epochs == [0, 1] and gpa.total["ctx"].device.type == "meta"

    on_cpu = PromptAverager([0.5, 0.5])
    on_cpu.load_state_dict(saved, {"ctx": torch.zeros(2, 3)})
    torch.testing.assert_close(on_cpu.total["ctx"], torch.full((2, 3), 0.25))


def test_gpa_sum_of_an_unknown_prompt_is_refused():
    gpa = PromptAverager([1.0])
    try:
        gpa.load_state_dict({"total": {"image_encoder.VPT": torch.ones(1)}, "epochs": [0]}, {"ctx": torch.ones(1)})
    except KeyError as e:
        assert "image_encoder.VPT" in str(e) and "PROMPT_DEPTH" in str(e)
    else:
        raise AssertionError("an unknown GPA entry was accepted")


# ----- module tensors move with the module ---------------------------------------------------------
def _plain_tensor_attributes(module):
    """(name, tensor) of every tensor a submodule holds outside its parameters and buffers."""
    return [
        (f"{prefix}.{key}".lstrip("."), value)
        for prefix, sub in module.named_modules()
        for key, value in vars(sub).items()
        if torch.is_tensor(value)
    ]


def test_prompted_clip_moves_its_token_ids_and_holds_no_stray_tensors():
    design = CfgNode(dict(N_CTX_TEXT=4, N_CTX_VISION=2, PROMPT_DEPTH_TEXT=2, PROMPT_DEPTH_VISION=2,
                          CTX_INIT="a photo of a"))
    model = IVLPCLIP(design, (32, 32), NAMES, tiny_clip_model("vit", seed=3))  # the teacher is built on the CPU
    ids = model.tokenized_prompts.clone()
    assert not _plain_tensor_attributes(model)
    assert not any("tokenized_prompts" in key for key in model.state_dict())  # checkpoints keep the reference's keys

    model.to(torch.float64)  # a dtype move leaves the integer ids alone
    assert torch.equal(model.tokenized_prompts, ids)
    model.to("meta")  # as .to("cuda")
    assert model.tokenized_prompts.device.type == "meta"
    assert model.prompt_learner.tokenized_prompts is model.tokenized_prompts


# ----- GradScaler: skipped updates are named ----------------------------------------------------------
def test_grad_scaler_skipped_update_is_logged_and_leaves_the_parameters(capsys):
    trainer = TrainerBase()
    w = torch.nn.Parameter(torch.ones(3))
    trainer.register_model("prompt_learner", torch.nn.Linear(1, 1), torch.optim.SGD([w], lr=0.1), None)
    trainer.set_precision(Precision("amp", torch.amp.GradScaler("cpu", init_scale=2.0**16), "cpu"))
    trainer.epoch, trainer.batch_idx = 1, 4

    trainer.model_backward_and_update((w * 1e36).sum())  # 1e36 * 65536 overflows fp32: inf gradients
    out = capsys.readouterr().out
    assert "GradScaler skipped the update at epoch 2 batch 5: inf/NaN gradients, loss scale now 32768" in out
    assert "(1 skipped so far)" in out
    assert torch.equal(w.detach(), torch.ones(3)) and trainer.skipped_updates == 1

    trainer.model_backward_and_update(w.sum())  # a finite step: applied, nothing logged
    assert "skipped" not in capsys.readouterr().out
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.9))
    assert trainer.skipped_updates == 1

    # the count travels with the checkpoint: a resumed run reports the whole run's skips
    resumed = TrainerBase()
    resumed.restore_run_state(trainer.run_state())
    assert resumed.skipped_updates == 1


def test_tta_counts_the_adaptation_steps_its_grad_scaler_skipped():
    torch.manual_seed(0)
    policy = PromptPolicy(tiny_clip_model("vit", seed=0), 4, "a photo of a")
    policy.start_dataset(NAMES)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), 5e-3)
    # init scale 2**127: the scaled loss overflows fp32, GradScaler skips and halves the scale
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    adapter = Adapter(policy, optimizer, steps=2, selection_p=0.5, scaler=scaler)
    ctx0 = policy.learner.ctx.detach().clone()
    adapter.adapt(torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)))

    assert (adapter.updates, adapter.skipped_updates) == (2, 2) and scaler.get_scale() == 2.0**125
    assert torch.equal(policy.learner.ctx, ctx0)  # nothing applied
    adapter.scaler.update(2.0**10)
    adapter.adapt(torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    assert (adapter.updates, adapter.skipped_updates) == (4, 2) and not torch.equal(policy.learner.ctx, ctx0)


# ----- frozen models hold no autograd state ----------------------------------------------------------
def _assert_frozen(module):
    for name, param in module.named_parameters():
        assert not param.requires_grad, f"{name} requires grad"
        assert param.grad is None, f"{name} holds a gradient"


def test_promptkd_teacher_holds_no_autograd_state_after_a_step(tmp_path, pets_root, tiny_vit_path, tiny_teacher_path):
    names = kd_parts.build_dataset(kd_parts._dataset_cfg(pets_root, "base2novel")).classnames
    ckpt = str(tmp_path / "teacher.pth.tar")
    kd_parts._save_teacher(ckpt, tiny_teacher_path, names)
    trainer = kd_parts._kd_trainer(pets_root, str(tmp_path / "kd"), tiny_vit_path, tiny_teacher_path, ckpt, "PromptKD")
    trainer.set_model_mode("train")
    batch = next(iter(trainer.train_loader_x))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.forward_backward(batch)

    assert any(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters() if n in before)
    _assert_frozen(trainer.teacher)
    assert not trainer.teacher.training
    assert trainer.teacher_text.grad_fn is None and not trainer.teacher_text.requires_grad
    logits = trainer.teacher_logits(batch["img"])
    assert logits.grad_fn is None and not logits.requires_grad


def test_rlcf_reward_models_hold_no_autograd_state_after_adaptation():
    torch.manual_seed(0)
    policy = PromptPolicy(tiny_clip_model("vit", seed=0), 4, "a photo of a")
    policy.start_dataset(NAMES)
    reward = CLIPReward([tiny_clip_model("vit", seed=3, embed_dim=48, vision_layers=3, text_layers=3)], sample_k=2)
    reward.set_class_features(policy.learner.tokenized_prompts)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), 5e-3)
    views = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ctx0 = policy.learner.ctx.detach().clone()
    Adapter(policy, optimizer, steps=2, selection_p=0.5, reward=reward).adapt(views)

    assert not torch.equal(policy.learner.ctx, ctx0)  # the policy did learn
    _assert_frozen(reward)
    held = reward.class_features + reward.image_features
    assert all(t.grad_fn is None and not t.requires_grad for t in held)
    rewards = reward.rewards(torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))  # 4 selected views x 2 candidates
    assert rewards.grad_fn is None and not rewards.requires_grad
