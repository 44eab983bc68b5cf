"""ImageFolder (your own data, no code): its layouts, split file, class names, few-shot and base/new,
and one clear error for each bad folder a user can give."""
import json
import os
import random

import pytest

import datasets  # noqa: F401  (registers the data sets)
from datasets.config import prompt_template_override
from datasets.image_folder import SPLIT_FILE, ImageFolder
from engine.config import get_cfg_default
from tests.image_folder_data import make_image_folder, write_image
from trainers.config import extend_cfg

CLASSES = ("sea_lion", "tabby_cat", "tree_frog")


def _cfg(root, **dataset):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.DATASET.NAME = "ImageFolder"
    cfg.DATASET.ROOT = str(root)
    cfg.SEED = 1
    for key, value in dataset.items():
        cfg.DATASET[key] = value
    return cfg


def _relative(items, root):
    return sorted((os.path.relpath(d.impath, root), d.label, d.classname) for d in items)


def test_class_folders_get_a_fixed_split_file(tmp_path):
    root = make_image_folder(tmp_path / "pets", CLASSES, images=10)
    data = ImageFolder(_cfg(root))
    assert data.classnames == ["sea lion", "tabby cat", "tree frog"]  # sorted folders, "_" -> " "
    # CoOp's 50/20/30 per class, the images shuffled by a Random(1) over the sorted file names
    rng = random.Random(1)
    expected = {"train": [], "val": [], "test": []}
    for label, name in enumerate(CLASSES):
        images = [f"{name}/img_{i}.png" for i in sorted(range(10), key=str)]
        rng.shuffle(images)
        for split, part in (("train", images[:5]), ("val", images[5:7]), ("test", images[7:])):
            expected[split] += [(p, label, name.replace("_", " ")) for p in part]
    for split, items in (("train", data.train_x), ("val", data.val), ("test", data.test)):
        assert _relative(items, root) == sorted(expected[split])
    with open(os.path.join(root, SPLIT_FILE)) as f:
        saved = json.load(f)
    assert sorted(map(tuple, saved["test"])) == sorted(expected["test"])

    # the file is the split from now on: an image added later is not drawn into it
    write_image(os.path.join(root, "sea_lion", "img_new.png"), seed=5)
    again = ImageFolder(_cfg(root))
    assert _relative(again.train_x + again.val + again.test, root) == _relative(data.train_x + data.val + data.test, root)


def test_classnames_file_renames_and_fewshot_base_new(tmp_path):
    root = make_image_folder(tmp_path / "animals", CLASSES, images=10)
    ImageFolder(_cfg(root))  # the split file is written with the folder names
    with open(os.path.join(root, "classnames.txt"), "w") as f:
        f.write("sea_lion Steller sea lion\n\ntree_frog red-eyed tree frog\n")
    data = ImageFolder(_cfg(root))
    assert data.classnames == ["Steller sea lion", "tabby cat", "red-eyed tree frog"]  # read anew from the file

    few = ImageFolder(_cfg(root, NUM_SHOTS=2))
    assert len(few.train_x) == 6 and len(few.val) == 6  # 2 per class, val min(2, 4)
    assert os.path.isfile(os.path.join(root, "split_fewshot", "shot_2-seed_1.json"))
    base = ImageFolder(_cfg(root, SUBSAMPLE_CLASSES="base"))
    new = ImageFolder(_cfg(root, SUBSAMPLE_CLASSES="new"))
    assert base.classnames == ["Steller sea lion", "tabby cat"] and new.classnames == ["red-eyed tree frog"]
    assert {d.label for d in new.test} == {0}  # relabelled from 0


def test_split_folders(tmp_path):
    root = make_image_folder(tmp_path / "given", CLASSES, splits={"train": 5, "val": 2, "test": 3})
    data = ImageFolder(_cfg(root))
    assert (len(data.train_x), len(data.val), len(data.test)) == (15, 6, 9)
    assert _relative(data.test, root)[0] == ("test/sea_lion/img_0.png", 0, "sea lion")
    assert not os.path.exists(os.path.join(root, SPLIT_FILE))  # the folders are the split

    root = make_image_folder(tmp_path / "no_val", CLASSES, splits={"train": 5, "test": 2})
    data = ImageFolder(_cfg(root))
    assert (len(data.train_x), len(data.val), len(data.test)) == (12, 3, 6)  # round(0.2 * 5) = 1 val per class
    assert {os.path.relpath(d.impath, root).split("/")[0] for d in data.val} == {"train"}
    assert os.path.isfile(os.path.join(root, SPLIT_FILE))

    root = make_image_folder(tmp_path / "eval_only", CLASSES[:2], splits={"test": 3})
    data = ImageFolder(_cfg(root))
    assert len(data.test) == 6 and data.train_x == data.test == data.val


def _error(root, match, **dataset):
    with pytest.raises(ValueError, match=match):
        ImageFolder(_cfg(root, **dataset))


def test_bad_folders_fail_clearly(tmp_path):
    root = make_image_folder(tmp_path / "empty", CLASSES, images=4)
    os.makedirs(os.path.join(root, "zebra"))
    _error(root, r'the class folder ".*zebra" holds no images: add images or remove the folder')

    root = make_image_folder(tmp_path / "one", ("cat",), images=4)
    _error(root, r'needs at least two class folders to classify, found only "cat"')

    root = make_image_folder(tmp_path / "broken", CLASSES, images=4)
    with open(os.path.join(root, "tabby_cat", "img_2.png"), "wb") as f:
        f.write(b"not a png")
    _error(root, r"1 image\(s\) cannot be read: .*tabby_cat/img_2.png \(UnidentifiedImageError\)\. Replace or remove them")

    root = make_image_folder(tmp_path / "mixed", CLASSES, splits={"train": 4, "test": 2})
    make_image_folder(root, ("stray_class",), images=4)
    _error(root, r"mixes layouts: split folders \(test, train\) and class folders \(stray_class\)")

    root = make_image_folder(tmp_path / "no_test", CLASSES, splits={"train": 4})
    _error(root, r"has train/ but no test/: a split layout needs train/ and test/")

    root = make_image_folder(tmp_path / "unknown_test_class", CLASSES[:2], splits={"train": 4})
    make_image_folder(os.path.join(root, "test"), CLASSES, images=2)
    _error(root, r"test/ has class folders that train/ lacks: tree_frog")

    root = make_image_folder(tmp_path / "loose", CLASSES, images=4)
    write_image(os.path.join(root, "stray.jpg"), seed=1)
    _error(root, r'holds images directly \(stray.jpg\): DATASET.ROOT must be the folder that holds one folder per class')

    root = make_image_folder(tmp_path / "few", CLASSES, images=3)
    _error(root, r'"sea_lion" has 3 image\(s\); a drawn train/val/test split needs at least 4 per class')

    root = make_image_folder(tmp_path / "names", CLASSES, images=4)
    with open(os.path.join(root, "classnames.txt"), "w") as f:
        f.write("sea_loin sea lion\n")
    _error(root, r'classnames.txt, line 1 \("sea_loin sea lion"\) names no class folder')

    with pytest.raises(FileNotFoundError, match=r'ImageFolder: DATASET.ROOT ".*nowhere" is not a folder'):
        ImageFolder(_cfg(tmp_path / "nowhere"))


def test_non_images_are_skipped_and_nested_images_kept(tmp_path, capsys):
    root = make_image_folder(tmp_path / "extra", CLASSES, images=4)
    with open(os.path.join(root, "sea_lion", "notes.txt"), "w") as f:
        f.write("where these came from")
    write_image(os.path.join(root, "tree_frog", "2024", "img_9.png"), seed=9)
    data = ImageFolder(_cfg(root))
    assert "skipped 1 file(s) that are not images" in capsys.readouterr().out
    assert any(d.impath.endswith("tree_frog/2024/img_9.png") for d in data.train_x + data.val + data.test)


def test_prompt_template_key():
    cfg = _cfg("unused", PROMPT_TEMPLATE="a photo of a {}, a kind of animal.")
    assert prompt_template_override(cfg) == "a photo of a {}, a kind of animal."
    cfg.DATASET.PROMPT_TEMPLATE = "a photo of an animal."
    with pytest.raises(ValueError, match=r'DATASET.PROMPT_TEMPLATE "a photo of an animal." must hold "\{\}" once'):
        prompt_template_override(cfg)
