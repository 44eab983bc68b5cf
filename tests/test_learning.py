"""One learning test per method family: a trainer fits its training set better after training than
before it (on the generated world, with a small world CLIP pretrained in the session), a linear
probe fits it better than zero-shot, PromptKD's student agrees more with its teacher, and
test-time adaptation moves its predictions away from zero-shot in the direction of its objective.

What each trainer computes is checked against recomputations elsewhere; these tests check that
the computed steps learn. Each run is short (10 epochs of 16 shots of 4 base classes), so a
method's reference schedule is replaced by one world schedule for all (world_ctxv1's SGD)."""
import contextlib
import io
import os

import pytest
import torch

import train
from engine.data.data_manager import build_data_loader
from lpclip.features import extract_features
from lpclip.linear_probe import image_encoder_builder
from lpclip.search import accuracy as probe_accuracy, search_c
from tools.tiny_clip import tiny_clip_model
from tools.world import data
from tta.classification.adapt import Adapter, marginal_entropy, select_confident
from tta.classification.policy import PromptPolicy, VisualPolicy
from tta.core.rewards import CLIPReward

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET = "world_colors"
WORLD_SCHEDULE = [
    "INPUT.SIZE", "(32, 32)", "INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]",
    "INPUT.PIXEL_STD", "[0.26862954, 0.26130258, 0.27577711]", "INPUT.TRANSFORMS", "['random_flip', 'normalize']",
    "DATALOADER.TRAIN_X.BATCH_SIZE", "32", "DATALOADER.NUM_WORKERS", "0", "OPTIM.MAX_EPOCH", "10",
    "OPTIM.NAME", "sgd", "OPTIM.LR", "0.01", "OPTIM.WARMUP_EPOCH", "1", "DATASET.NUM_SHOTS", "16",
]
DEEP_2 = {  # prompt depths that fit the world CLIP's 2 blocks
    "IVLP": ["TRAINER.IVLP.PROMPT_DEPTH_VISION", "2", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2"],
    "MaPLe": ["TRAINER.MAPLE.PROMPT_DEPTH", "2"],
    "PromptSRC": ["TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2", "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2"],
}
TRAINERS = {  # family: (trainer, its reference config)
    "context prompt": ("CoOp", "CoOp/world_ctxv1"),
    "conditional prompt": ("CoCoOp", "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1"),
    "knowledge-guided prompt": ("KgCoOp", "KgCoOp/vit_b16_ep100_ctxv1"),
    "deep vision-language prompt": ("IVLP", "IVLP/vit_b16_c2_ep5_batch4_2+2ctx"),
    "coupled multi-modal prompt": ("MaPLe", "MaPLe/vit_b16_c2_ep5_batch4_2ctx"),
    "self-regulated prompt": ("PromptSRC", "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx"),
    "text residual": ("TaskRes", "TaskRes/adam_lr2e-4_B256_ep200_ViT16"),
    "refiner plug-in": ("TextRefiner", "TextRefiner/world_ctxv1"),
}


@pytest.fixture(scope="module")
def world_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("world_data")
    data.write_world(str(root), [DATASET], log=lambda message: None)
    return str(root)


def build(root, clip_path, out, trainer, config, *extra, classes="base"):
    """The trainer as train.py builds it on the world's base classes (not trained), quietly."""
    args = train.build_parser().parse_args([
        "--root", root, "--seed", "1", "--trainer", trainer, "--output-dir", str(out), "--no-train",
        "--dataset-config-file", os.path.join(REPO, f"configs/datasets/{DATASET}.yaml"),
        "--config-file", os.path.join(REPO, f"configs/trainers/{config}.yaml"),
        *WORLD_SCHEDULE, *DEEP_2.get(trainer, []), "MODEL.BACKBONE.PATH", clip_path,
        "DATASET.SUBSAMPLE_CLASSES", classes, *extra,
    ])
    with contextlib.redirect_stdout(io.StringIO()):
        return train.main(args)


@torch.no_grad()
def train_set_predictions(trainer, items=None):
    """(predicted classes [N], labels [N]) of the trainer on its own training images (or ``items``),
    with the test transform."""
    loader = build_data_loader(trainer.cfg, data_source=items or trainer.dm.dataset.train_x, batch_size=64,
                               tfm=trainer.dm.tfm_test, is_train=False)
    trainer.set_model_mode("eval")
    trainer.before_evaluation("test")
    with contextlib.redirect_stderr(io.StringIO()):
        outputs = list(trainer.batch_outputs(loader))
    trainer.after_evaluation("test")
    return torch.cat([o.argmax(1).cpu() for o, _ in outputs]), torch.cat([label.cpu() for _, label in outputs])


def train_set_accuracy(trainer):
    predicted, labels = train_set_predictions(trainer)
    return 100.0 * (predicted == labels).float().mean().item()


def fit(trainer):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        trainer.train()


@pytest.mark.slow
@pytest.mark.parametrize("family", list(TRAINERS))
def test_trainer_fits_its_training_set(family, tmp_path, world_root, small_world_clip):
    trainer = build(world_root, small_world_clip, tmp_path, *TRAINERS[family])
    before = train_set_accuracy(trainer)
    fit(trainer)
    after = train_set_accuracy(trainer)
    # measured here (64 images, before -> after): CoOp 60.9 -> 67.2, CoCoOp 57.8 -> 62.5, KgCoOp 60.9 -> 70.3,
    # IVLP 45.3 -> 75.0, MaPLe 37.5 -> 57.8, PromptSRC 42.2 -> 65.6, TaskRes 60.9 -> 64.1, TextRefiner 57.8 -> 70.3
    assert after > before, (family, before, after)


@pytest.mark.slow
def test_linear_probe_fits_its_training_set_better_than_zero_shot(tmp_path, world_root, small_world_clip):
    zero_shot = build(world_root, small_world_clip, tmp_path, "ZeroshotCLIP", "CoOp/world_ctxv1")
    zero_shot_accuracy = train_set_accuracy(zero_shot)
    cfg, items = zero_shot.cfg, zero_shot.dm.dataset.train_x
    with contextlib.redirect_stderr(io.StringIO()):
        encoder, device = image_encoder_builder(cfg, "fp32")()
        features = extract_features(cfg, encoder, items, device, "train")
    _, probe, _ = search_c(features, features, num_step=2, log=lambda message: None)
    # measured here: zero-shot 60.9, the probe 100.0
    assert 100.0 * probe_accuracy(probe, *features) > zero_shot_accuracy, zero_shot_accuracy


@pytest.mark.slow
def test_promptkd_student_agrees_more_with_its_teacher(tmp_path, world_root, small_world_clip):
    """A PromptSRC teacher trained on all classes, then PromptKD distilling it (no labels) into the
    same world CLIP (the cross-data-set protocol: every class at test): the student's training-image
    predictions agree more with the teacher's."""
    teacher = build(world_root, small_world_clip, tmp_path / "teacher", *TRAINERS["self-regulated prompt"],
                    classes="all")
    fit(teacher)
    checkpoint = tmp_path / "teacher" / "VLPromptLearner" / "model.pth.tar-10"
    assert checkpoint.is_file()
    student = build(world_root, small_world_clip, tmp_path / "student", "PromptKD",
                    "PromptKD/vit_b16_c2_ep20_batch8_4+4ctx", "TRAINER.MODAL", "cross",  # all classes
                    "TRAINER.PROMPTKD.TEACHER_CKPT", str(checkpoint),
                    "TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH", small_world_clip,
                    "TRAINER.PROMPTKD.PROMPT_DEPTH_VISION", "2")
    teacher_predictions, _ = train_set_predictions(teacher, student.dm.dataset.train_x)

    def agreement():
        predicted, _ = train_set_predictions(student)
        return 100.0 * (predicted == teacher_predictions).float().mean().item()

    before = agreement()
    fit(student)
    assert agreement() > before, before  # measured here: 10.9 -> 15.6 (128 images)


# --- test-time adaptation: tiny CLIPs, one image's augmented views -------------------------------

NAMES = ["cat", "golden retriever", "sea lion", "tench", "red fox"]
N_VIEWS, P = 16, 0.5  # 8 confident views


@pytest.fixture(scope="module")
def views():
    return torch.randn(N_VIEWS, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def reward_of(tokenized, sample_k):
    """A frozen tiny "larger" CLIP scoring the student's class prompts; ``sample_k`` candidates per view."""
    reward = CLIPReward([tiny_clip_model("vit", seed=3, embed_dim=48, vision_layers=3, text_layers=3)],
                        sample_k=sample_k)
    reward.set_class_features(tokenized)
    return reward


def adapted_logits(kind, views, steps, lr, reward_k=0):
    """Logits [N_VIEWS, C] of every view after adapting to the image (steps 0: zero-shot); TPT
    without ``reward_k``, RLCF with a reward model scoring the top ``reward_k`` classes."""
    model = tiny_clip_model("vit", seed=0)
    policy = PromptPolicy(model, 4, "a photo of a") if kind == "prompt" else VisualPolicy(model, "a photo of a")
    tokenized = policy.start_dataset(NAMES)
    reward = reward_of(tokenized, reward_k) if reward_k else None
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr, weight_decay=0.0) if steps else None
    Adapter(policy, optimizer, steps, P, reward).adapt(views)
    with torch.no_grad():
        return policy.logits(slice(None)).float(), tokenized


def expected_reward(logits, views, tokenized):
    """Mean over views of sum_c p(c | view) x CLIPScore(view, class c) under the reward model."""
    reward = reward_of(tokenized, len(NAMES))
    reward.set_image_features(views)
    scores = reward.clip_score(torch.arange(len(NAMES)).repeat(len(views))).reshape(len(views), -1)  # [V, C]
    return (logits.softmax(-1) * scores).sum(-1).mean().item()


LR = {"prompt": 5e-3, "image encoder": 1e-4}


@pytest.mark.parametrize("kind", list(LR))
def test_tpt_lowers_the_marginal_entropy_of_the_confident_views(kind, views):
    zero_shot, _ = adapted_logits(kind, views, 0, 0)
    adapted, _ = adapted_logits(kind, views, 4, LR[kind])
    idx = select_confident(zero_shot, P)
    assert not torch.allclose(adapted, zero_shot)
    assert marginal_entropy(adapted[idx]) < marginal_entropy(zero_shot[idx]) - 1e-3


@pytest.mark.parametrize("kind", list(LR))
def test_rlcf_raises_the_expected_clip_reward_of_the_confident_views(kind, views):
    zero_shot, tokenized = adapted_logits(kind, views, 0, 0)
    adapted, _ = adapted_logits(kind, views, 4, LR[kind], reward_k=3)
    idx = select_confident(zero_shot, P)
    assert not torch.allclose(adapted, zero_shot)
    before = expected_reward(zero_shot[idx], views[idx], tokenized)
    after = expected_reward(adapted[idx], views[idx], tokenized)
    assert after > before + 1e-4, (before, after)
