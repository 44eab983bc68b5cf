"""A user's mistakes through train.py: bad labels in a split file, short classes, a ResNet CLIP for deep
prompts, an over-long class name, a missing --resume folder; shown without a traceback or config dump."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import train
from engine.utils.faults import UserError
from tests import tiny_run
from tools.tiny_clip import save_tiny_clip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _argv(root, clip_path, out, trainer="CoOp", config="CoOp/vit_b16_ep50_ctxv1.yaml", *flags, opts=()):
    return tiny_run.argv(root, out, clip_path, trainer, config, *opts, flags=flags, batch=None, shots=2, epochs=1)


def _main(argv):
    return train.main(train.build_parser().parse_args(argv))


@pytest.fixture
def pets(tmp_path, pets_root):
    """A copy of the miniature OxfordPets (6 classes; train 6, val 1, test 3 images each) and its split file."""
    root = str(tmp_path / "data")
    shutil.copytree(pets_root, root, ignore=shutil.ignore_patterns("split_fewshot"))
    return root, os.path.join(root, "oxford_pets", "split_zhou_OxfordPets.json")


def _edit_split(path, edit):
    with open(path) as f:
        split = json.load(f)
    edit(split)
    with open(path, "w") as f:
        json.dump(split, f)


def _relabel(entries, old, new):
    for entry in entries:
        if entry[1] == old:
            entry[1] = new


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["test"][0].__setitem__(1, 9),
     r'has test entry #0 \("Abyssinian_8.jpg"\) with label 9, which no train entry has \(train labels 0..5\): such an '
     r"image is always counted as a miss; fix the file"),
    (lambda s: s["train"][1].__setitem__(2, "siamese"),
     r'gives label 0 two class names: "abyssinian" \(train entry #0 \["Abyssinian_1.jpg", 0, "abyssinian"\]\) and '
     r'"siamese" \(train entry #1 .*\)\. A label has one class name'),
    (lambda s: s["train"].__setitem__(3, s["train"][3][:2]),
     r'has a malformed train entry #3 \["Abyssinian_\d+.jpg", 0\]: each entry is \[image path relative to the image '
     r"folder, label \(an integer from 0\), class name\]"),
    (lambda s: [_relabel(s[k], 5, 6) for k in s],
     r"OxfordPets: no training image has label\(s\) \[5\] \(labels from \".*split_zhou_OxfordPets.json\"\), but the "
     r"model gets one class per label up to the largest \(6\)"),
])
def test_bad_labels_are_named_with_file_and_entry(pets, tiny_vit_path, tmp_path, edit, message):
    root, split_path = pets
    _edit_split(split_path, edit)
    with pytest.raises(ValueError, match=message) as info:
        _main(_argv(root, tiny_vit_path, str(tmp_path / "out")))
    assert "split_zhou_OxfordPets.json" in str(info.value)


def test_num_shots_above_a_class_is_one_line(pets, tiny_vit_path, tmp_path):
    root, _ = pets
    _main(_argv(root, tiny_vit_path, str(tmp_path / "out"), "CoOp", "CoOp/vit_b16_ep50_ctxv1.yaml", "--no-train",
                opts=["DATASET.NUM_SHOTS", "8"]))
    with open(tmp_path / "out" / "log.txt") as f:
        lines = [line for line in f if line.startswith("NUM_SHOTS")]
    assert lines == [
        "NUM_SHOTS 8: train: 6 of 6 classes have fewer than 8 images and use all of them: abyssinian (6), "
        "american_bulldog (6), american_pit_bull_terrier (6), basset_hound (6), beagle (6), bengal (6); val: 6 of 6 "
        "classes have fewer than 4 images and use all of them: abyssinian (1), american_bulldog (1), "
        "american_pit_bull_terrier (1), basset_hound (1), beagle (1), bengal (1)\n"]


@pytest.mark.parametrize("trainer, config", [("IVLP", "IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml"),
                                             ("MaPLe", "MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml")])
def test_deep_prompts_on_a_resnet_clip_are_one_clear_error(tmp_path, pets_root, trainer, config):
    resnet = save_tiny_clip(str(tmp_path / "tiny_rn.pt"), kind="resnet", fmt="state_dict")
    with pytest.raises(ValueError, match=rf'{trainer} puts prompts into the transformer blocks of a ViT image encoder, '
                                         rf'but the CLIP ".*tiny_rn.pt" has a ResNet image encoder: use a ViT backbone'):
        _main(_argv(pets_root, str(resnet), str(tmp_path / "out"), trainer, config))


def test_class_name_over_77_tokens_names_the_class_and_file(pets, tiny_vit_path, tmp_path):
    root, split_path = pets
    long_name = "very " * 80 + "fluffy cat"
    _edit_split(split_path, lambda s: [e.__setitem__(2, long_name) for k in s for e in s[k] if e[1] == 2])
    with pytest.raises(ValueError, match=r'The class name "very very .*\.\.\." \(label 2 in ".*split_zhou_OxfordPets.json"\) '
                                         r"is 82 tokens long, but CLIP's text encoder reads 77 tokens"):
        _main(_argv(root, tiny_vit_path, str(tmp_path / "out"), "ZeroshotCLIP", "CoOp/vit_b16_ep50_ctxv1.yaml",
                    "--eval-only"))


def test_resume_of_a_missing_folder_is_an_error(pets_root, tiny_vit_path, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match=f'The --resume folder "{missing}" does not exist'):
        _main(_argv(pets_root, tiny_vit_path, str(tmp_path / "out"), "CoOp", "CoOp/vit_b16_ep50_ctxv1.yaml",
                    "--resume", missing))


@pytest.mark.slow
def test_user_error_prints_its_message_alone(pets, tiny_vit_path, tmp_path):
    root, split_path = pets
    _edit_split(split_path, lambda s: s["test"][0].__setitem__(1, 9))
    argv = [sys.executable, "train.py", *_argv(root, tiny_vit_path, str(tmp_path / "out"))]
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.startswith(f'Error: The split file "{split_path}" has test entry #0'), res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "** Config **" not in res.stdout and len(res.stdout.splitlines()) < 15
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "** Config **" in log and f'Error: The split file "{split_path}" has test entry #0' in log

    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, TEXTREFINER_DEBUG="1"))
    assert res.returncode == 1 and "Traceback (most recent call last)" in res.stderr and "** Config **" in res.stdout
