"""PromptSRC's GPA, the TRAINER.MODAL data protocol, the PromptKD teacher loader, and the
numerics and evaluation of TextRefiner on PromptKD."""
import math
import os

import pytest
import torch
import torch.nn.functional as F

import clip
import train
from engine.config import CfgNode
from engine.data.datasets.build import build_dataset
from tests import tiny_run
from trainers.gpa import PromptAverager, gaussian_epoch_weights
from trainers.ivlp import IVLPCLIP

def _args(root, out, trainer, config, *opts, extra=()):
    return tiny_run.parse(root, out, None, trainer, config, *opts, flags=extra, epochs=3)


# ----- GPA -------------------------------------------------------------------------------------
def test_gaussian_epoch_weights():
    weights = gaussian_epoch_weights(15, 1, 20)
    density = [math.exp(-0.5 * (e - 15) ** 2) for e in range(1, 21)]
    assert weights == pytest.approx([d / sum(density) for d in density])
    assert weights.index(max(weights)) == 14 and sum(weights) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="GPA_STD must be positive"):
        gaussian_epoch_weights(15, 0, 20)


def test_promptsrc_final_prompts_are_the_gaussian_weighted_average(tmp_path, pets_root, tiny_vit_path):
    out = str(tmp_path / "src")
    args = _args(pets_root, out, "PromptSRC", "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
                 "MODEL.BACKBONE.PATH", tiny_vit_path, "TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2",
                 "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2", "TRAINER.PROMPTSRC.GPA_MEAN", "2",
                 "TRAINER.PROMPTSRC.GPA_STD", "1", extra=["--no-train"])
    trainer = train.main(args)
    trainer.max_epoch, trainer.output_dir = 3, out
    prompts = dict(trainer.prompts())
    assert sorted(prompts) == ["image_encoder.VPT", "image_encoder.transformer.resblocks.1.VPT_shallow",
                               "prompt_learner.ctx", "text_encoder.transformer.resblocks.1.VPT_shallow"]
    seen = []
    gen = torch.Generator().manual_seed(0)
    for epoch in range(3):  # what each epoch's training left in the prompts
        with torch.no_grad():
            for p in prompts.values():
                p.copy_(torch.randn(p.shape, generator=gen))
        seen.append({k: v.detach().clone() for k, v in prompts.items()})
        trainer.epoch = epoch
        trainer.after_epoch()
        if epoch == 1:  # a run stopped here resumes with the same running sum
            trainer.save_model(epoch, str(tmp_path / "stopped"))
            fresh = train.main(args)
            assert fresh.resume_model_if_exist(str(tmp_path / "stopped")) == 2
            assert fresh.gpa.epochs == [0, 1]
            for name, total in trainer.gpa.total.items():
                torch.testing.assert_close(fresh.gpa.total[name], total)
    density = [math.exp(-0.5 * (e - 2) ** 2) for e in (1, 2, 3)]
    w = [d / sum(density) for d in density]
    for name, param in prompts.items():
        expected = sum(w[e] * seen[e][name] for e in range(3))
        torch.testing.assert_close(param.detach(), expected)
    saved = torch.load(os.path.join(out, "VLPromptLearner", "model.pth.tar-3"), weights_only=True)
    torch.testing.assert_close(saved["state_dict"]["prompt_learner.ctx"], prompts["prompt_learner.ctx"].detach())


def test_prompt_averager_refuses_an_epoch_twice():
    gpa = PromptAverager([0.5, 0.5])
    gpa.add(0, {"p": torch.ones(2)})
    with pytest.raises(ValueError, match="already holds epoch 1"):
        gpa.add(0, {"p": torch.ones(2)})


# ----- data protocol -----------------------------------------------------------------------------
def _dataset_cfg(root, modal, subsample="all"):
    args = _args(root, "", "PromptKD", "PromptKD/vit_b16_c2_ep20_batch8_4+4ctx.yaml", "TRAINER.MODAL", modal,
                 "DATASET.SUBSAMPLE_CLASSES", subsample)
    return train.setup_cfg(args)


def test_base2novel_trains_on_all_classes_and_tests_the_halves_relabelled(pets_root):
    plain = build_dataset(_dataset_cfg(pets_root, "", "all"))
    data = build_dataset(_dataset_cfg(pets_root, "base2novel"))
    assert sorted({d.label for d in data.train_x}) == list(range(6)) and data.classnames == plain.classnames
    assert len(data.train_x) == 6 * 4  # few-shot train of every class
    base = [d for d in plain.test if d.label < 3]
    new = [d for d in plain.test if d.label >= 3]
    assert [(d.impath, d.label) for d in data.val] == [(d.impath, d.label) for d in base]
    assert [(d.impath, d.label + 3) for d in data.test] == [(d.impath, d.label) for d in new]
    assert sorted({d.label for d in data.test}) == [0, 1, 2]


def test_cross_mode_keeps_all_classes_with_val_equal_to_test(pets_root):
    data = build_dataset(_dataset_cfg(pets_root, "cross"))
    assert sorted({d.label for d in data.train_x}) == list(range(6))
    assert data.val == data.test and sorted({d.label for d in data.test}) == list(range(6))


def test_unknown_modal_is_rejected(pets_root):
    with pytest.raises(ValueError, match='TRAINER.MODAL must be "base2novel" or "cross".*got "novel"'):
        build_dataset(_dataset_cfg(pets_root, "novel"))


# ----- teacher ----------------------------------------------------------------------------------
def _save_teacher(path, clip_path, classnames, extra=None):
    """A teacher checkpoint as the reference releases them: the whole model state (prompt depth 2)."""
    design = CfgNode(dict(N_CTX_TEXT=4, N_CTX_VISION=2, PROMPT_DEPTH_TEXT=2, PROMPT_DEPTH_VISION=2,
                          CTX_INIT="a photo of a"))
    model = IVLPCLIP(design, (32, 32), classnames, clip.load("ViT-L/14", path=clip_path))
    state = {k: v + 0.01 if "VPT" in k or k.endswith("ctx") else v for k, v in model.state_dict().items()}
    state.update(extra or {})
    torch.save({"state_dict": state, "epoch": 20}, path)
    return state


@pytest.fixture
def teacher_file(tmp_path, pets_root, tiny_teacher_path):
    names = build_dataset(_dataset_cfg(pets_root, "base2novel")).classnames
    path = str(tmp_path / "teacher.pth.tar")
    # reference checkpoints also hold the zero-shot image encoder copy, which is ignored
    state = _save_teacher(path, tiny_teacher_path, names, {"prompt_learner.ZS_image_encoder.conv1.weight": torch.ones(1)})
    return path, state


def _kd_trainer(root, out, student, teacher_clip, teacher_ckpt, trainer="TextRefiner", modal="base2novel"):
    config = "TextRefiner/vit_b16_c2_ep20_batch8_4+4ctx.yaml" if trainer == "TextRefiner" else \
        "PromptKD/vit_b16_c2_ep20_batch8_4+4ctx.yaml"
    return train.main(_args(root, out, trainer, config, "MODEL.BACKBONE.PATH", student,
                            "TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH", teacher_clip,
                            "TRAINER.PROMPTKD.TEACHER_CKPT", teacher_ckpt, "TRAINER.PROMPTKD.PROMPT_DEPTH_VISION", "2",
                            "TRAINER.PROMPTKD.KD_WEIGHT", "1000.0", "TRAINER.MODAL", modal, extra=["--no-train"]))


def test_teacher_design_is_read_off_the_checkpoint(tmp_path, pets_root, tiny_vit_path, tiny_teacher_path, teacher_file):
    path, state = teacher_file
    trainer = _kd_trainer(pets_root, str(tmp_path / "kd"), tiny_vit_path, tiny_teacher_path, path, "PromptKD")
    teacher = trainer.teacher
    assert teacher.image_encoder.VPT.shape == (2, 128) and not teacher.training
    torch.testing.assert_close(teacher.prompt_learner.ctx, state["prompt_learner.ctx"])
    torch.testing.assert_close(teacher.image_encoder.transformer.resblocks[1].VPT_shallow,
                               state["image_encoder.transformer.resblocks.1.VPT_shallow"])
    assert not any(p.requires_grad for p in teacher.parameters())
    assert trainer.teacher_text.shape == (6, 48)
    enabled = sorted(n for n, p in trainer.model.named_parameters() if p.requires_grad)
    assert enabled[:2] == ["VPT_image_trans.conv1.0.bias", "VPT_image_trans.conv1.0.weight"]
    assert "image_encoder.VPT" in enabled and not any("mid_image_trans" in n for n in enabled)


def test_teacher_of_another_trainer_is_refused(tmp_path, pets_root, tiny_vit_path, tiny_teacher_path):
    path = str(tmp_path / "coop.pth.tar")
    torch.save({"state_dict": {"ctx": torch.zeros(4, 64)}, "epoch": 1}, path)
    with pytest.raises(KeyError, match="no prompt_learner.ctx: it is not a PromptSRC / IVLP teacher"):
        _kd_trainer(pets_root, str(tmp_path / "kd"), tiny_vit_path, tiny_teacher_path, path, "PromptKD")


def test_promptkd_needs_a_modal(tmp_path, pets_root, tiny_vit_path):
    args = _args(pets_root, str(tmp_path / "kd"), "PromptKD", "PromptKD/vit_b16_c2_ep20_batch8_4+4ctx.yaml",
                 "MODEL.BACKBONE.PATH", tiny_vit_path)
    with pytest.raises(ValueError, match=r'TRAINER.MODAL "base2novel" or "cross".*got ""'):
        train.main(args)


# ----- TextRefiner on PromptKD --------------------------------------------------------------------
def test_textrefiner_promptkd_losses_follow_the_reference(tmp_path, pets_root, tiny_vit_path, tiny_teacher_path,
                                                          teacher_file):
    trainer = _kd_trainer(pets_root, str(tmp_path / "tr"), tiny_vit_path, tiny_teacher_path, teacher_file[0])
    trainer.set_model_mode("train")
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    teacher_logits = trainer.teacher_logits(images)
    model, memory, text = trainer.model, trainer.memory, trainer.teacher_text  # text [6, 48]
    cache_before = memory.get_cache().clone()

    loss, parts = trainer.losses(images, teacher_logits)

    with torch.no_grad():  # train mode: BN uses the batch statistics, as in the step
        scale = model.logit_scale.exp()
        glob, tokens, attn = model.image_encoder(images, return_local=True)  # [4, D], [4, 17, 32], [4, 16]
        student = F.normalize(model.VPT_image_trans(glob), dim=-1)
        z = model.mid_image_trans(tokens)  # [4, 17, 48]
        top = attn.topk(5, dim=-1).indices + 1
        idx = torch.cat([torch.zeros(4, 1, dtype=torch.long), top], dim=1)
        local = torch.cat([torch.gather(z, 1, idx.unsqueeze(-1).expand(4, 6, 48)), z.mean(1, keepdim=True)], 1)
        local = local.reshape(-1, 48)  # [28, 48], not normalised
        read = (text @ cache_before.t()).softmax(dim=1) @ cache_before
        refined = 0.2 * memory.extractor(torch.cat([text, read], dim=-1)) + text
        p_t = teacher_logits.softmax(dim=1)
        ukd = F.kl_div((scale * student @ refined.t()).log_softmax(1), p_t, reduction="sum") / (4 * 6)
        sem = F.kl_div((scale * local @ text.t()).log_softmax(1), p_t.repeat_interleave(7, 0), reduction="sum") / (28 * 6)
        mem = (F.normalize(refined, dim=-1) - text).abs().mean()
    torch.testing.assert_close(parts["L_ukd"], 1000 * ukd)
    torch.testing.assert_close(parts["L_sem"], 10 * sem)
    torch.testing.assert_close(parts["L_mem"], 20 * mem)
    torch.testing.assert_close(loss.detach(), 1000 * ukd + 10 * sem + 20 * mem)
    assert not torch.equal(memory.get_cache(), cache_before)  # written after the read

    loss.backward()  # L_mem's text is the frozen teacher's: the prompts and both heads get gradients
    assert model.image_encoder.VPT.grad is not None and memory.extractor.weight.grad is not None
    assert model.mid_image_trans.conv1[0].weight.grad is not None


def test_textrefiner_promptkd_evaluation(tmp_path, pets_root, tiny_vit_path, tiny_teacher_path, teacher_file):
    trainer = _kd_trainer(pets_root, str(tmp_path / "ev"), tiny_vit_path, tiny_teacher_path, teacher_file[0])

    def never(*args, **kwargs):
        raise AssertionError("the teacher image encoder ran at test time")

    trainer.teacher.image_encoder.forward = never
    calls, shapes = [], []
    refine, inference = trainer.head.refine, trainer.model_inference
    trainer.head.refine = lambda text: calls.append(1) or refine(text)
    trainer.model_inference = lambda image: shapes.append(tuple(inference(image).shape)) or inference(image)
    trainer.test("val")
    trainer.test("test")
    assert len(calls) == 2  # the refined teacher text: once per evaluation
    assert {s[1] for s in shapes} == {3}  # val: the 3 base classes; test: the 3 new ones
    refined = refine(trainer.teacher_text)
    trainer.before_evaluation("test")
    torch.testing.assert_close(trainer._eval_text, refined[3:])


def test_too_deep_prompts_name_the_key(tmp_path, pets_root, tiny_vit_path):
    args = _args(pets_root, str(tmp_path / "src"), "PromptSRC", "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
                 "MODEL.BACKBONE.PATH", tiny_vit_path, extra=["--no-train"])
    with pytest.raises(ValueError, match="PROMPT_DEPTH_VISION 9 does not fit the 2 blocks of the CLIP image encoder"):
        train.main(args)
