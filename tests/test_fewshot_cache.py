"""The few-shot cache follows the lists it was sampled from: a changed split file never leaks test images."""
import json
import os
import shutil

import pytest

import datasets  # noqa: F401  (registers the data sets)
from engine.config import get_cfg_default
from engine.data.datasets import build_dataset
from engine.utils import write_json_atomic
from reference_files import reference_pickle
from tools.synthetic_data import make_dataset


def make_cfg(root, name="EuroSAT", num_shots=2, seed=1):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED = str(root), name, num_shots, seed
    cfg.VERBOSE = False
    return cfg


def paths(items):
    return {item.impath for item in items}


def per_class(items, k):
    """The first ``k`` items of every label."""
    return [item for label in sorted({i.label for i in items}) for item in [i for i in items if i.label == label][:k]]


def replace_split(info, trade=2):
    """A released split replacing the generated one: per class, ``trade`` train and test images swap."""
    with open(info["split_file"]) as f:
        split = json.load(f)
    for label in {entry[1] for entry in split["train"]}:
        train = [e for e in split["train"] if e[1] == label][:trade]
        test = [e for e in split["test"] if e[1] == label][:trade]
        split["train"] = [e for e in split["train"] if e not in train] + test
        split["test"] = [e for e in split["test"] if e not in test] + train
    with open(info["split_file"], "w") as f:
        json.dump(split, f)


def test_cache_is_sampled_again_when_the_split_file_changes(tmp_path, capsys):
    info = make_dataset("EuroSAT", tmp_path, images_per_class=12)
    cache = os.path.join(info["dataset_dir"], "split_fewshot", "shot_2-seed_1.json")
    first = build_dataset(make_cfg(tmp_path))
    assert f"Saving preprocessed few-shot data to {cache}" in capsys.readouterr().out
    with open(cache) as f:
        first_source = json.load(f)["source"]

    replace_split(info)
    again = build_dataset(make_cfg(tmp_path))
    out = capsys.readouterr().out
    assert (f'Not using the few-shot cache "{cache}": it was sampled from other train/val lists (the split file or '
            "the images changed since)") in out
    assert f"Saving preprocessed few-shot data to {cache}" in out
    assert paths(again.train_x) <= paths(build_dataset(make_cfg(tmp_path, num_shots=-1)).train_x)
    assert paths(again.train_x).isdisjoint(paths(again.test)), "test images among the few-shot training images"
    assert paths(first.train_x) & paths(again.test), "the new split must move some sampled images to test"
    with open(cache) as f:
        assert json.load(f)["source"] != first_source

    build_dataset(make_cfg(tmp_path))  # the rebuilt cache now fits
    assert f"Loading preprocessed few-shot data from {cache}" in capsys.readouterr().out


def test_reference_cache_is_used_only_while_its_images_are_still_train_images(tmp_path, monkeypatch, capsys):
    info = make_dataset("EuroSAT", tmp_path, images_per_class=12)
    full = build_dataset(make_cfg(tmp_path, num_shots=-1))
    folder = os.path.join(info["dataset_dir"], "split_fewshot")
    reference = os.path.join(folder, "shot_2-seed_1.pkl")
    shots = {"train": per_class(full.train_x, 2), "val": per_class(full.val, 1)}  # as the reference samples
    blob = reference_pickle(monkeypatch, shots)
    with open(reference, "wb") as f:
        f.write(blob)

    used = build_dataset(make_cfg(tmp_path))
    assert f"Loading preprocessed few-shot data from {reference}" in capsys.readouterr().out
    assert paths(used.train_x) == paths(shots["train"]) and os.listdir(folder) == ["shot_2-seed_1.pkl"]

    replace_split(info)
    again = build_dataset(make_cfg(tmp_path))
    out = capsys.readouterr().out
    assert f'Not using the few-shot cache "{reference}" (written by the reference code): its train list holds "' in out
    assert "which is not in the current train list with the same label (the split file changed since it was sampled)" in out
    assert paths(again.train_x).isdisjoint(paths(again.test))
    with open(reference, "rb") as f:
        assert f.read() == blob  # left in place
    build_dataset(make_cfg(tmp_path))  # our cache, written now, comes first
    assert f"Loading preprocessed few-shot data from {os.path.join(folder, 'shot_2-seed_1.json')}" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["{not json", '{"train": 3}', "[]"])
def test_unreadable_cache_is_named_and_sampled_again(tmp_path, capsys, content):
    info = make_dataset("EuroSAT", tmp_path)
    first = build_dataset(make_cfg(tmp_path))
    cache = os.path.join(info["dataset_dir"], "split_fewshot", "shot_2-seed_1.json")
    with open(cache, "w") as f:
        f.write(content)
    again = build_dataset(make_cfg(tmp_path))
    out = capsys.readouterr().out
    assert f'Not using the few-shot cache "{cache}": it cannot be read (' in out
    assert paths(again.train_x) == paths(first.train_x)  # the same seed samples the same images
    with open(cache) as f:
        assert len(json.load(f)["train"]) == len(first.train_x)


def test_cache_survives_moving_the_data_folder(tmp_path, capsys):
    make_dataset("Caltech101", tmp_path / "old")
    first = build_dataset(make_cfg(tmp_path / "old", "Caltech101", num_shots=1))
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    shutil.rmtree(tmp_path / "old")
    capsys.readouterr()
    moved = build_dataset(make_cfg(tmp_path / "new", "Caltech101", num_shots=1))
    cache = tmp_path / "new" / "caltech-101" / "split_fewshot" / "shot_1-seed_1.json"
    assert f"Loading preprocessed few-shot data from {cache}" in capsys.readouterr().out
    old_root = str(tmp_path / "old")
    assert [i.impath.replace(str(tmp_path / "new"), old_root) for i in moved.train_x] == [i.impath for i in first.train_x]


def test_json_write_is_atomic(tmp_path):
    path = tmp_path / "cache.json"
    write_json_atomic({"train": [1]}, str(path))
    with pytest.raises(TypeError):
        write_json_atomic({"train": [object()]}, str(path))  # fails half-way through the write
    assert json.loads(path.read_text()) == {"train": [1]} and os.listdir(tmp_path) == ["cache.json"]
