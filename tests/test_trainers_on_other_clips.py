"""Every trainer and TextRefiner host takes one training step on a tiny CLIP in each weight layout
(OpenAI's file, an OpenCLIP folder with GELU and 32-channel heads, a Hugging Face CLIPModel folder),
named by MODEL.BACKBONE.PATH alone; and MaPLe / IVLP run on a ViT-L/14-shaped model whose image,
text and embedding widths all differ (no dimension is written in the code)."""
import math
import os

import pytest
import torch

from tests import tiny_run
from tools.tiny_clip import save_tiny_clip, save_tiny_openclip, tiny_hf_clip

DEPTH2 = {key: ["TRAINER.{0}.PROMPT_DEPTH_VISION", "2", "TRAINER.{0}.PROMPT_DEPTH_TEXT", "2", "TRAINER.{0}.PREC", "fp32"]
          for key in ("IVLP", "PROMPTSRC")}
PROMPTKD = ["TRAINER.MODAL", "base2novel", "TRAINER.PROMPTKD.PROMPT_DEPTH_VISION", "2", "TRAINER.PROMPTKD.PREC", "fp32"]
# (trainer, config, its own opts); "{clip}" / "{teacher}" / "{base}" are filled per layout
CASES = {
    "CoOp": ("CoOp", "CoOp/vit_b16_ep50_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "CoCoOp": ("CoCoOp", "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
    "KgCoOp": ("KgCoOp", "KgCoOp/vit_b16_ep100_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "IVLP": ("IVLP", "IVLP/vit_b16_c2_ep5_batch4_2+2ctx", [o.format("IVLP") for o in DEPTH2["IVLP"]]),
    "MaPLe": ("MaPLe", "MaPLe/vit_b16_c2_ep5_batch4_2ctx", ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PREC", "fp32"]),
    "PromptSRC": ("PromptSRC", "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx",
                  [o.format("PROMPTSRC") for o in DEPTH2["PROMPTSRC"]] + ["TRAINER.PROMPTSRC.GPA_MEAN", "1"]),
    "PromptKD": ("PromptKD", "PromptKD/vit_b16_c2_ep20_batch8_4+4ctx", PROMPTKD),
    "TaskRes": ("TaskRes", "TaskRes/adam_lr2e-3_B256_ep100", ["TRAINER.TaskRes.PREC", "fp32"]),
    "TaskResEnhancedBase": ("TaskResEnhancedBase", "TaskResEnhancedBase/adam_lr1e-4_B256_ep100",
                            ["TRAINER.TaskRes.PREC", "fp32", "TRAINER.TaskRes.ENHANCED_BASE", "{base}"]),
    "TextRefiner-CoOp": ("TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "TextRefiner-CoCoOp": ("TextRefiner", "TextRefiner/cocoop_vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
    "TextRefiner-KgCoOp": ("TextRefiner", "TextRefiner/kgcoop_vit_b16_ep100_ctxv1", ["TRAINER.COOP.PREC", "fp32"]),
    "TextRefiner-IVLP": ("TextRefiner", "TextRefiner/ivlp_vit_b16_c2_ep5_batch4_2+2ctx",
                         [o.format("IVLP") for o in DEPTH2["IVLP"]]),
    "TextRefiner-MaPLe": ("TextRefiner", "TextRefiner/maple_vit_b16_c2_ep5_batch4_2ctx",
                          ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PREC", "fp32"]),
    "TextRefiner-PromptSRC": ("TextRefiner", "TextRefiner/promptsrc_vit_b16_c2_ep20_batch4_4+4ctx",
                              [o.format("PROMPTSRC") for o in DEPTH2["PROMPTSRC"]] + ["TRAINER.PROMPTSRC.GPA_MEAN", "1"]),
    "TextRefiner-PromptKD": ("TextRefiner", "TextRefiner/vit_b16_c2_ep20_batch8_4+4ctx", PROMPTKD),
}
LAYOUTS = ("openai", "openclip", "hf")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """layout -> (weights file or folder, PromptKD teacher checkpoint, TaskRes enhanced-base file); every
    model has text width 64 and embedding 32, the OpenCLIP and HF ones 4 image and 2 text heads."""
    tmp = tmp_path_factory.mktemp("layouts")
    paths = {
        "openai": save_tiny_clip(str(tmp / "openai.pt"), seed=0),
        "openclip": save_tiny_openclip(str(tmp / "openclip"), seed=1, vision_heads=4, text_heads=2)[0],
    }
    tiny_hf_clip(seed=2, vision_heads=4, text_heads=2).save_pretrained(str(tmp / "hf"))
    paths["hf"] = str(tmp / "hf")
    gen = torch.Generator().manual_seed(0)
    teacher = tmp / "teacher.pth.tar"  # a PromptSRC teacher holding only its text context (design read off it)
    torch.save({"state_dict": {"prompt_learner.ctx": 0.02 * torch.randn(4, 64, generator=gen)}, "epoch": 1}, teacher)
    base = tmp / "enhanced_base.pth.tar"
    torch.save({"state_dict": {"weight": 0.1 * torch.randn(32, 64, generator=gen)}}, base)
    return {layout: (path, str(teacher), str(base)) for layout, path in paths.items()}


def _build(tmp_path, root, clip_path, trainer, config, opts):
    return tiny_run.build(root, str(tmp_path), clip_path, trainer, config, "DATASET.SUBSAMPLE_CLASSES", "base", *opts,
                          shots=2, epochs=1)


def _trainable(trainer):
    modules = [trainer.model] + ([trainer.memory] if hasattr(trainer, "memory") else [])
    return {f"{i}.{n}": p.detach().clone() for i, m in enumerate(modules) for n, p in m.named_parameters()
            if p.requires_grad}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_step_on_each_layout(tmp_path, pets_root, clips, case, layout):
    trainer_name, config, opts = CASES[case]
    clip_path, teacher, base = clips[layout]
    opts = [o.replace("{base}", base) for o in opts]
    if "PromptKD" in case:  # mixed towers: the teacher's CLIP is the next layout's
        teacher_clip = clips[LAYOUTS[(LAYOUTS.index(layout) + 1) % len(LAYOUTS)]][0]
        opts += ["TRAINER.PROMPTKD.TEACHER_CKPT", teacher, "TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH", teacher_clip]
    if case.startswith("TextRefiner-"):
        opts += ["TRAINER.TF.HOST", case.split("-", 1)[1]]
    trainer = _build(tmp_path, pets_root, clip_path, trainer_name, config, opts)
    activations = {type(m).__name__ for m in trainer.model.modules() if type(m).__name__ in ("GELU", "QuickGELU")}
    assert activations == {"GELU" if layout == "openclip" else "QuickGELU"}  # the weights' own
    before = _trainable(trainer)
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert math.isfinite(summary["loss"])
    after = _trainable(trainer)
    assert any(not torch.equal(before[k], after[k]) for k in before), "no trainable parameter moved"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_zero_shot_clip_on_each_layout(tmp_path, pets_root, clips, layout):
    trainer = _build(tmp_path, pets_root, clips[layout][0], "ZeroshotCLIP", "CoOp/vit_b16", [])
    images = next(iter(trainer.test_loader))["img"]
    with torch.no_grad():
        assert trainer.model_inference(images).shape == (len(images), 3)  # the 3 base classes


@pytest.fixture(scope="module")
def large_shaped_clip(tmp_path_factory):
    """ViT-L/14's proportions in miniature: image width 192 (3 heads), text width 128 (2 heads),
    embedding 96, 3 image blocks and 2 text blocks; OpenAI's layout."""
    path = tmp_path_factory.mktemp("large") / "vit_l_shaped.pt"
    return save_tiny_clip(str(path), seed=7, vision_width=192, text_width=128, embed_dim=96, vision_layers=3)


@pytest.mark.parametrize("case", ["MaPLe", "IVLP", "TextRefiner-MaPLe", "TextRefiner-IVLP"])
def test_prompt_learners_on_other_widths(tmp_path, pets_root, large_shaped_clip, case):
    trainer_name, config, opts = CASES[case]
    if case.startswith("TextRefiner-"):
        opts = opts + ["TRAINER.TF.HOST", case.split("-", 1)[1]]
    trainer = _build(tmp_path, pets_root, large_shaped_clip, trainer_name, config, opts)
    learner = trainer.model.prompt_learner
    assert learner.ctx.shape[-1] == 128  # the text width
    if "MaPLe" in case:
        assert (learner.proj.in_features, learner.proj.out_features) == (128, 192)
        assert all(p.weight.shape == (192, 128) for p in learner.compound_prompt_projections)
    else:
        assert trainer.model.image_encoder.VPT.shape[-1] == 192
    before = _trainable(trainer)
    trainer.set_model_mode("train")
    assert math.isfinite(trainer.forward_backward(next(iter(trainer.train_loader_x)))["loss"])
    assert any(not torch.equal(before[k], v) for k, v in _trainable(trainer).items())
    trainer.set_model_mode("eval")
    trainer.before_evaluation("test")
    with torch.no_grad():
        assert trainer.model_inference(next(iter(trainer.test_loader))["img"]).shape[-1] == 3


def test_tta_student_and_reward_of_other_layouts(tmp_path, clips):
    from tests.image_folder_data import make_image_folder
    from tta.classification.runner import main as tta_main

    folder = make_image_folder(tmp_path / "birds", ("owl", "wren", "jay"), images=4, splits={"test": 2})
    out = str(tmp_path / "tta")
    results = tta_main(["--method", "rlcf-prompt", "--image_folder", folder, "-a", clips["openclip"][0],
                        "--reward_arch", clips["hf"][0], "--batch_size", "8", "--selection_p", "0.25",
                        "--tta_steps", "1", "--workers", "0", "--output", out])
    assert [r[:2] for r in results] == [("birds", "ImageFolder")]
    with open(os.path.join(out, "log.txt")) as f:
        log = f.read()
    assert 'Loaded CLIP weights: OpenCLIP "open_clip_model.safetensors"' in log  # the student
    assert 'Loaded CLIP weights: Hugging Face CLIPModel "' in log  # the reward model
