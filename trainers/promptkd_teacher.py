"""PromptKD's teacher: a PromptSRC (IVLP) CLIP loaded from a teacher checkpoint, frozen.

Where the checkpoint is: TRAINER.PROMPTKD.TEACHER_CKPT, or by default the reference's place
(relative to the working directory): ``teacher_model/<DATASET.NAME>/VLPromptLearner/model-best.pth.tar``
for base2novel and ``teacher_model/ImageNet-xd/VLPromptLearner_large/model.pth.tar-20`` for cross.
The prompt design (context lengths, depths) is read off the checkpoint, so released teachers
(depth 9, 4 + 4 tokens) and teachers trained here with another design both load.
"""
import os
import re

import clip
from clip.model import convert_weights
from engine.config import CfgNode
from engine.utils import load_checkpoint

from .clip_backbone import clip_weights_file
from .ivlp import IVLPCLIP

TEACHER_BUFFERS = ("token_prefix", "token_suffix", "token_prefix2", "token_suffix2")
RELEASED_TEACHERS = "https://github.com/zhengli97/PromptKD (README: the released teacher models)"


def default_teacher_path(dataset_name, modal):
    if modal == "cross":
        return os.path.join("teacher_model", "ImageNet-xd", "VLPromptLearner_large", "model.pth.tar-20")
    return os.path.join("teacher_model", dataset_name, "VLPromptLearner", "model-best.pth.tar")


def teacher_weights_files(cfg):
    """{config key: file} of the teacher's checkpoint and its CLIP."""
    kd = cfg.TRAINER.PROMPTKD
    return {
        "TRAINER.PROMPTKD.TEACHER_CKPT": kd.TEACHER_CKPT or default_teacher_path(cfg.DATASET.NAME, cfg.TRAINER.MODAL),
        "TRAINER.PROMPTKD.TEACHER_NAME": clip_weights_file(kd.TEACHER_NAME, kd.TEACHER_BACKBONE_PATH),
    }


def teacher_path(cfg):
    """The teacher checkpoint file, with one clear error when it is missing."""
    path = cfg.TRAINER.PROMPTKD.TEACHER_CKPT or default_teacher_path(cfg.DATASET.NAME, cfg.TRAINER.MODAL)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'PromptKD teacher checkpoint "{os.path.abspath(path)}" not found. Train a teacher with '
            "scripts/promptsrc/base2new_train.sh (CFG vit_l14_c2_ep20_batch8_4+4ctx) or download a released "
            f"one ({RELEASED_TEACHERS}), then set TRAINER.PROMPTKD.TEACHER_CKPT to its model file "
            "(e.g. .../VLPromptLearner/model.pth.tar-20) or put it at that default place."
        )
    return path


def _count_deep(state_dict, prefix):
    pattern = re.compile(re.escape(prefix) + r"\.transformer\.resblocks\.(\d+)\.VPT_shallow$")
    return sum(1 for key in state_dict if pattern.match(key))


def prompt_design(state_dict, path, ctx_init):
    """The IVLP design a teacher state dict was trained with (PROMPTSRC-style config keys)."""
    if "prompt_learner.ctx" not in state_dict:
        raise KeyError(
            f'"{path}" has no prompt_learner.ctx: it is not a PromptSRC / IVLP teacher checkpoint '
            "(was it written by another trainer?)"
        )
    vpt = state_dict.get("image_encoder.VPT")
    return CfgNode(
        dict(
            N_CTX_TEXT=state_dict["prompt_learner.ctx"].shape[0],
            PROMPT_DEPTH_TEXT=1 + _count_deep(state_dict, "text_encoder"),
            N_CTX_VISION=0 if vpt is None else vpt.shape[0],
            PROMPT_DEPTH_VISION=0 if vpt is None else 1 + _count_deep(state_dict, "image_encoder"),
            CTX_INIT=ctx_init,
        )
    )


def load_teacher(cfg, classnames, prec, device):
    """The frozen teacher IVLPCLIP for all ``classnames``, in eval mode on ``device``."""
    kd = cfg.TRAINER.PROMPTKD
    path = teacher_path(cfg)
    checkpoint = load_checkpoint(path)
    state_dict = {k: v for k, v in checkpoint["state_dict"].items() if k.split(".")[-1] not in TEACHER_BUFFERS}
    design = prompt_design(state_dict, path, kd.CTX_INIT)
    print(f"CLIP Teacher name is {kd.TEACHER_NAME}")
    clip_model = clip.load(kd.TEACHER_NAME, path=kd.TEACHER_BACKBONE_PATH or None, device="cpu")
    if prec == "fp16":
        convert_weights(clip_model)
    teacher = IVLPCLIP(design, cfg.INPUT.SIZE, classnames, clip_model)
    # the released teachers hold the whole model; frozen weights they carry load too, as in the reference
    result = teacher.load_state_dict(state_dict, strict=False)
    prompts = {k for k, _ in teacher.named_parameters() if k.startswith("prompt_learner.ctx") or "VPT" in k}
    missing = sorted(prompts & set(result.missing_keys))
    if missing:
        raise KeyError(f'The teacher checkpoint "{path}" lacks {missing}')
    print(f'Loaded the teacher from "{path}" (epoch = {checkpoint.get("epoch")})')
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher.to(device).eval()
