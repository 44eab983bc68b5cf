"""What the GPU check runs on: generated data, random-weight CLIPs, PromptKD teachers, and the
trainers it builds (every trainer, TextRefiner on each host), with their config and opts.

Nothing is downloaded: the CLIPs are random (OpenAI's layout, so clip.load reads them back)
and the images are tools/synthetic_data.py's.
"""
import os
from dataclasses import dataclass, field

import torch

import clip
import train
from engine import build_trainer
from engine.config import CfgNode
from engine.utils import set_random_seed
from tools.synthetic_data import make_dataset
from tools.tiny_clip import save_tiny_clip
from trainers.ivlp import IVLPCLIP

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_YAML = os.path.join(REPO, "configs/datasets/oxford_pets.yaml")
NUM_CLASSES = 6

# size -> (input size, student CLIP shape, teacher CLIP shape); the teacher is small at either size
SIZES = {
    "tiny": (32, dict(), dict(seed=3, embed_dim=48, vision_layers=3, text_layers=3)),
    "vitb16": (
        224,
        dict(image_size=224, patch_size=16, vision_width=768, vision_layers=12, text_width=512, text_layers=12,
             embed_dim=512),
        dict(seed=3, image_size=224, patch_size=32, embed_dim=48, vision_layers=3, text_layers=3),
    ),
}
SIZE_NAMES = {"tiny": "tiny CLIP", "vitb16": "ViT-B/16-shaped CLIP"}


@dataclass(frozen=True)
class Spec:
    """One trainer as the check builds it: ``opts`` for every size, ``tiny_opts`` to fit 2 blocks."""

    label: str
    trainer: str
    config: str  # under configs/trainers
    prec_key: str = ""  # TRAINER.<prec_key>.PREC; "" for ZeroshotCLIP (fp16 on CUDA by design)
    opts: tuple = ()
    tiny_opts: tuple = ()
    teacher: bool = False  # needs a PromptKD teacher checkpoint
    eval_only: bool = False


def _depths(key, *names):
    return tuple(x for name in names for x in (f"TRAINER.{key}.{name}", "2"))


SPECS = [
    Spec("CoOp", "CoOp", "CoOp/vit_b16_ep50.yaml", "COOP"),
    Spec("CoCoOp", "CoCoOp", "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml", "COCOOP"),
    Spec("KgCoOp", "KgCoOp", "KgCoOp/vit_b16_ep100_ctxv1.yaml", "COOP"),
    Spec("IVLP", "IVLP", "IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml", "IVLP",
         tiny_opts=_depths("IVLP", "PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT")),
    Spec("MaPLe", "MaPLe", "MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml", "MAPLE", tiny_opts=_depths("MAPLE", "PROMPT_DEPTH")),
    Spec("PromptSRC", "PromptSRC", "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml", "PROMPTSRC",
         opts=("TRAINER.PROMPTSRC.GPA_MEAN", "1"),
         tiny_opts=_depths("PROMPTSRC", "PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT")),
    Spec("PromptKD", "PromptKD", "PromptKD/vit_b16_c2_ep20_batch8_4+4ctx.yaml", "PROMPTKD", teacher=True,
         tiny_opts=_depths("PROMPTKD", "PROMPT_DEPTH_VISION")),
    Spec("TaskRes", "TaskRes", "TaskRes/adam_lr2e-3_B256_ep100.yaml", "TaskRes"),
    Spec("TextRefiner-CoOp", "TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1.yaml", "COOP"),
    Spec("TextRefiner-CoCoOp", "TextRefiner", "TextRefiner/cocoop_vit_b16_c4_ep10_batch1_ctxv1.yaml", "COCOOP"),
    Spec("TextRefiner-KgCoOp", "TextRefiner", "TextRefiner/kgcoop_vit_b16_ep100_ctxv1.yaml", "COOP"),
    Spec("TextRefiner-IVLP", "TextRefiner", "TextRefiner/ivlp_vit_b16_c2_ep5_batch4_2+2ctx.yaml", "IVLP",
         tiny_opts=_depths("IVLP", "PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT")),
    Spec("TextRefiner-MaPLe", "TextRefiner", "TextRefiner/maple_vit_b16_c2_ep5_batch4_2ctx.yaml", "MAPLE",
         tiny_opts=_depths("MAPLE", "PROMPT_DEPTH")),
    Spec("TextRefiner-PromptSRC", "TextRefiner", "TextRefiner/promptsrc_vit_b16_c2_ep20_batch4_4+4ctx.yaml",
         "PROMPTSRC", opts=("TRAINER.PROMPTSRC.GPA_MEAN", "1"),
         tiny_opts=_depths("PROMPTSRC", "PROMPT_DEPTH_VISION", "PROMPT_DEPTH_TEXT")),
    Spec("TextRefiner-PromptKD", "TextRefiner", "TextRefiner/vit_b16_c2_ep20_batch8_4+4ctx.yaml", "PROMPTKD",
         teacher=True, tiny_opts=_depths("PROMPTKD", "PROMPT_DEPTH_VISION")),
    Spec("ZeroshotCLIP", "ZeroshotCLIP", "ZeroshotCLIP/vit_b16.yaml", eval_only=True),
]
SPEC_BY_LABEL = {spec.label: spec for spec in SPECS}


@dataclass
class Workspace:
    """Files shared by every run of the check, written once under ``root``."""

    root: str
    data: str = ""
    clips: dict = field(default_factory=dict)  # size -> student CLIP file
    teachers: dict = field(default_factory=dict)  # size -> (teacher CLIP file, teacher checkpoint)


def prepare(root, sizes):
    """Generate the data set, the CLIP files and the teacher checkpoints of ``sizes``."""
    ws = Workspace(root, data=os.path.join(root, "data"))
    info = make_dataset("OxfordPets", ws.data, num_classes=NUM_CLASSES, images_per_class=8, seed=0, image_size=(40, 48))
    for size in sizes:
        image, student, teacher = SIZES[size]
        ws.clips[size] = save_tiny_clip(os.path.join(root, f"clip_{size}.pt"), **student)
        teacher_clip = save_tiny_clip(os.path.join(root, f"teacher_clip_{size}.pt"), **teacher)
        ws.teachers[size] = (teacher_clip, _save_teacher(root, size, teacher_clip, image, info["classnames"]))
    return ws


def _save_teacher(root, size, clip_path, image, classnames):
    """A PromptSRC teacher checkpoint (prompt depth 2) as PromptKD loads them: the whole model state."""
    design = CfgNode(dict(N_CTX_TEXT=4, N_CTX_VISION=4, PROMPT_DEPTH_TEXT=2, PROMPT_DEPTH_VISION=2,
                          CTX_INIT="a photo of a"))
    model = IVLPCLIP(design, (image, image), classnames, clip.load("ViT-L/14", path=clip_path, device="cpu"))
    path = os.path.join(root, f"teacher_{size}.pth.tar")
    torch.save({"state_dict": model.state_dict(), "epoch": 20}, path)
    return path


def argv_of(ws, spec, size, prec, device, out, batch=4):
    """train.py's command line for ``spec`` at ``size`` in ``prec`` on ``device`` ("cpu" or "cuda")."""
    image = SIZES[size][0]
    opts = [
        "MODEL.BACKBONE.PATH", ws.clips[size], "INPUT.SIZE", f"({image}, {image})", "USE_CUDA", str(device == "cuda"),
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", str(batch),
        "DATALOADER.TEST.BATCH_SIZE", str(batch), "DATASET.NUM_SHOTS", "4", "OPTIM.MAX_EPOCH", "1",
        *spec.opts, *(spec.tiny_opts if size == "tiny" else ()),
    ]
    if spec.prec_key:
        opts += [f"TRAINER.{spec.prec_key}.PREC", prec]
    if spec.teacher:
        teacher_clip, teacher_ckpt = ws.teachers[size]
        opts += ["TRAINER.MODAL", "base2novel", "TRAINER.PROMPTKD.TEACHER_CKPT", teacher_ckpt,
                 "TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH", teacher_clip]
    return [
        "--root", ws.data, "--seed", "1", "--output-dir", out, "--trainer", spec.trainer,
        "--dataset-config-file", DATASET_YAML, "--config-file", os.path.join(REPO, "configs/trainers", spec.config),
        *opts,
    ]


def build(ws, spec, size, prec, device, out, batch=4):
    """The trainer, built as train.py builds it (seeded), without training."""
    args = train.build_parser().parse_args(argv_of(ws, spec, size, prec, device, out, batch))
    cfg = train.setup_cfg(args)
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)
