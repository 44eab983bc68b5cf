"""The 15 data sets built from miniature copies of their real layouts."""
import json
import math
import os
import random
from collections import Counter

import pytest

import datasets  # noqa: F401  (registers the data sets)
from engine.config import get_cfg_default
from engine.data.datasets import Datum, build_dataset
from reference_files import reference_pickle
from tools.synthetic_data import GENERATORS, make_dataset

ALL = sorted(GENERATORS)
VARIANTS = ["ImageNetA", "ImageNetR", "ImageNetSketch", "ImageNetV2"]
SPLIT_DATASETS = [n for n in ALL if n not in VARIANTS and n != "ImageNet"]  # the 11 with train/val/test
JSON_DATASETS = [n for n in SPLIT_DATASETS if n != "FGVCAircraft"]


def make_cfg(root, name, num_shots=-1, seed=1, subsample="all"):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    cfg.VERBOSE = False
    return cfg


def per_class(items):
    counts = Counter(item.label for item in items)
    return [counts[label] for label in range(max(counts) + 1)] if counts else []


def triples(items):
    return [(item.impath, item.label, item.classname) for item in items]


def cached_triples(dataset_dir, name, split):
    """(absolute path, label, class name) of one list of a JSON cache (paths relative to the data set folder)."""
    with open(os.path.join(dataset_dir, "split_fewshot", name)) as f:
        return [(os.path.join(dataset_dir, p), label, c) for p, label, c in json.load(f)[split]]


@pytest.mark.parametrize("with_split_file", [True, False], ids=["split-file", "generated"])
@pytest.mark.parametrize("name", ALL)
def test_dataset_builds_with_expected_classes_and_counts(tmp_path, capsys, name, with_split_file):
    info = make_dataset(name, tmp_path, with_split_file=with_split_file)
    ds = build_dataset(make_cfg(tmp_path, name))

    assert ds.classnames == info["classnames"]
    assert ds.num_classes == len(info["classnames"]) == 5
    assert ds.lab2cname == dict(enumerate(info["classnames"]))
    assert per_class(ds.train_x) == info["counts"]["train"]
    assert per_class(ds.test) == info["counts"]["test"]
    for item in ds.train_x + ds.test:
        assert os.path.isfile(item.impath) and item.impath.startswith(info["dataset_dir"])
        assert item.classname == info["classnames"][item.label]
    if name in VARIANTS:
        assert ds.val is None and ds.train_x is ds.test
    elif name == "ImageNet":
        assert ds.val is ds.test
    else:
        assert per_class(ds.val) == info["counts"]["val"]
        train_paths = {i.impath for i in ds.train_x}
        assert train_paths.isdisjoint({i.impath for i in ds.val} | {i.impath for i in ds.test})

    out = capsys.readouterr().out
    if name in JSON_DATASETS and not with_split_file:
        split_file = GENERATORS[name][2]
        split_path = os.path.join(info["dataset_dir"], split_file)
        assert os.path.isfile(split_path)
        assert f'a new {name} split was generated and saved to "{split_path}"' in out
        assert f"Published numbers use the released {split_file}" in out
        assert f"python -m datasets.split_files {name} --root" in out
    elif name in JSON_DATASETS:
        assert f"Reading split from {info['split_file']}" in out


@pytest.mark.parametrize("name", SPLIT_DATASETS + ["ImageNet"])
def test_fewshot_sizes_and_cache(tmp_path, name):
    info = make_dataset(name, tmp_path)
    random.seed(1)
    ds = build_dataset(make_cfg(tmp_path, name, num_shots=2, seed=1))
    assert per_class(ds.train_x) == [min(2, n) for n in info["counts"]["train"]]
    assert cached_triples(info["dataset_dir"], "shot_2-seed_1.json", "train") == triples(ds.train_x)
    if name == "ImageNet":
        with pytest.raises(KeyError):
            cached_triples(info["dataset_dir"], "shot_2-seed_1.json", "val")
        assert ds.val is ds.test and per_class(ds.test) == info["counts"]["test"]
    else:
        assert per_class(ds.val) == [min(2, n) for n in info["counts"]["val"]]
        assert cached_triples(info["dataset_dir"], "shot_2-seed_1.json", "val") == triples(ds.val)


def test_fewshot_val_uses_at_most_4_shots_and_short_classes_keep_all(tmp_path):
    info = make_dataset("DescribableTextures", tmp_path, num_classes=3, images_per_class=20)
    assert info["counts"]["train"] == [10] * 3 and info["counts"]["val"] == [4] * 3
    ds = build_dataset(make_cfg(tmp_path, "DescribableTextures", num_shots=5))
    assert per_class(ds.train_x) == [5, 5, 5] and per_class(ds.val) == [4, 4, 4]
    ds = build_dataset(make_cfg(tmp_path, "DescribableTextures", num_shots=16))  # more than a class has
    assert per_class(ds.train_x) == [10, 10, 10] and per_class(ds.val) == [4, 4, 4]


@pytest.mark.parametrize("name", SPLIT_DATASETS + ["ImageNet"])
def test_base_new_subsample(tmp_path, name):
    info = make_dataset(name, tmp_path)  # 5 classes: base = labels 0-2, new = 3-4
    names, test_counts = info["classnames"], info["counts"]["test"]
    for subsample, kept in (("base", slice(0, 3)), ("new", slice(3, 5))):
        ds = build_dataset(make_cfg(tmp_path, name, num_shots=2, subsample=subsample))
        assert ds.classnames == names[kept]
        assert per_class(ds.test) == test_counts[kept]
        assert per_class(ds.train_x) == [min(2, n) for n in info["counts"]["train"][kept]]
        labels = {item.label for item in ds.train_x + ds.test + (ds.val or [])}
        assert labels == set(range(len(names[kept])))
        assert all(item.classname == ds.classnames[item.label] for item in ds.test)
    # every subsample setting draws from the one cached few-shot pool
    assert os.listdir(os.path.join(info["dataset_dir"], "split_fewshot")) == ["shot_2-seed_1.json"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_ignore_shots_and_subsample(tmp_path, name):
    info = make_dataset(name, tmp_path)
    ds = build_dataset(make_cfg(tmp_path, name, num_shots=1, subsample="base"))
    assert ds.classnames == info["classnames"] and len(ds.test) == sum(info["counts"]["test"])
    assert not os.path.exists(os.path.join(info["dataset_dir"], "split_fewshot"))


def test_imagenet_a_r_use_labels_within_the_subset(tmp_path):
    info = make_dataset("ImageNetR", tmp_path)
    with open(os.path.join(info["dataset_dir"], "classnames.txt")) as f:
        listed = [line.split(" ", 1)[1].strip() for line in f]
    assert len(listed) == 10 and info["classnames"] == listed[1::2]
    ds = build_dataset(make_cfg(tmp_path, "ImageNetR"))
    assert ds.num_classes == 5 and ds.classnames == listed[1::2]


@pytest.mark.parametrize("name", ["DescribableTextures", "OxfordPets", "OxfordFlowers"])
def test_split_generation_is_deterministic_for_a_seed(tmp_path, name):
    info = make_dataset(name, tmp_path, images_per_class=12, with_split_file=False)
    split_path = os.path.join(info["dataset_dir"], GENERATORS[name][2])

    def generate(seed):
        if os.path.exists(split_path):
            os.remove(split_path)
        random.seed(seed)
        build_dataset(make_cfg(tmp_path, name))
        with open(split_path) as f:
            return json.load(f)

    first = generate(3)
    assert generate(3) == first
    other = generate(4)
    assert other != first
    if name == "OxfordPets":  # the official test list does not depend on the seed
        assert other["test"] == first["test"]
    # paths are stored relative to the image root
    prefix = GENERATORS[name][3]
    assert all(os.path.isfile(os.path.join(info["dataset_dir"], prefix, p)) and not p.startswith("/")
               for p, _, _ in first["train"])


def test_generated_split_is_read_back_identically(tmp_path):
    make_dataset("Caltech101", tmp_path, with_split_file=False)
    random.seed(0)
    generated = build_dataset(make_cfg(tmp_path, "Caltech101"))
    read_back = build_dataset(make_cfg(tmp_path, "Caltech101"))
    for split in ("train_x", "val", "test"):
        assert triples(getattr(read_back, split)) == triples(getattr(generated, split))


def test_fewshot_cache_round_trip(tmp_path, capsys):
    info = make_dataset("OxfordPets", tmp_path, images_per_class=12)
    cache = os.path.join(info["dataset_dir"], "split_fewshot", "shot_4-seed_7.json")
    random.seed(7)
    first = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=4, seed=7, subsample="new"))
    assert os.path.isfile(cache) and f"Saving preprocessed few-shot data to {cache}" in capsys.readouterr().out
    with open(cache) as f:
        stored = json.load(f)
    assert {label for _, label, _ in stored["train"]} == set(range(5))  # stored before class subsampling
    assert (stored["num_shots"], stored["seed"]) == (4, 7) and len(stored["source"]) == 64
    assert all(not p.startswith("/") for p, _, _ in stored["train"] + stored["val"])  # portable: relative paths

    random.seed(12345)  # a cache hit draws nothing: the RNG state does not matter
    again = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=4, seed=7, subsample="new"))
    assert f"Loading preprocessed few-shot data from {cache}" in capsys.readouterr().out
    assert triples(again.train_x) == triples(first.train_x) and triples(again.val) == triples(first.val)

    os.remove(cache)  # sampling again with the same seed gives the same pool
    random.seed(7)
    resampled = build_dataset(make_cfg(tmp_path, "OxfordPets", num_shots=4, seed=7, subsample="new"))
    assert triples(resampled.train_x) == triples(first.train_x)


def test_reference_fewshot_pickle_with_dassl_module_path_loads(tmp_path, monkeypatch):
    info = make_dataset("EuroSAT", tmp_path)
    full = build_dataset(make_cfg(tmp_path, "EuroSAT"))
    train, val = full.train_x[::3], full.val[::2]
    blob = reference_pickle(monkeypatch, {"train": train, "val": val})
    with open(os.path.join(info["dataset_dir"], "split_fewshot", "shot_3-seed_2.pkl"), "wb") as f:
        f.write(blob)

    ds = build_dataset(make_cfg(tmp_path, "EuroSAT", num_shots=3, seed=2))
    assert all(type(item) is Datum for item in ds.train_x + ds.val)
    assert triples(ds.train_x) == triples(train) and triples(ds.val) == triples(val)
    assert ds.classnames == info["classnames"]


def test_imagenet_image_lists_are_written_and_reused(tmp_path):
    info = make_dataset("ImageNet", tmp_path)
    first = build_dataset(make_cfg(tmp_path, "ImageNet"))
    with open(os.path.join(info["dataset_dir"], "preprocessed.json")) as f:
        data = json.load(f)
    for split, items in (("train", first.train_x), ("test", first.test)):
        assert [(os.path.join(info["dataset_dir"], p), label, c) for p, label, c in data[split]] == triples(items)
    os.remove(os.path.join(info["dataset_dir"], "classnames.txt"))  # not needed once the lists are saved
    again = build_dataset(make_cfg(tmp_path, "ImageNet"))
    assert triples(again.test) == triples(first.test) and all(type(item) is Datum for item in again.test)


def test_imagenet_reads_the_reference_preprocessed_pickle(tmp_path, monkeypatch, capsys):
    info = make_dataset("ImageNet", tmp_path)
    full = build_dataset(make_cfg(tmp_path, "ImageNet"))
    os.remove(os.path.join(info["dataset_dir"], "preprocessed.json"))
    train, test = full.train_x[::-1], full.test[1:]  # another order than ours: the pickle's is used
    blob = reference_pickle(monkeypatch, {"train": train, "test": test})
    with open(os.path.join(info["dataset_dir"], "preprocessed.pkl"), "wb") as f:
        f.write(blob)
    ds = build_dataset(make_cfg(tmp_path, "ImageNet"))
    assert triples(ds.train_x) == triples(train) and triples(ds.test) == triples(test)
    assert not os.path.exists(os.path.join(info["dataset_dir"], "preprocessed.json"))


def test_stanford_cars_split_paths_are_relative_to_the_dataset_folder(tmp_path):
    info = make_dataset("StanfordCars", tmp_path, with_split_file=False)
    build_dataset(make_cfg(tmp_path, "StanfordCars"))
    with open(os.path.join(info["dataset_dir"], "split_zhou_StanfordCars.json")) as f:
        split = json.load(f)
    assert {p.split("/")[0] for p, _, _ in split["train"] + split["val"]} == {"cars_train"}
    assert {p.split("/")[0] for p, _, _ in split["test"]} == {"cars_test"}
    assert split["test"][0][2][:4].isdigit()  # the year comes first


def test_subsample_midpoint_is_ceil_of_half(tmp_path):
    make_dataset("Food101", tmp_path, num_classes=7)
    base = build_dataset(make_cfg(tmp_path, "Food101", subsample="base"))
    new = build_dataset(make_cfg(tmp_path, "Food101", subsample="new"))
    assert (base.num_classes, new.num_classes) == (math.ceil(7 / 2), 7 // 2)


def test_data_manager_builds_loaders(tmp_path):
    data_manager = pytest.importorskip("engine.data.data_manager")
    make_dataset("OxfordPets", tmp_path, image_size=(30, 40))
    cfg = make_cfg(tmp_path, "OxfordPets", num_shots=2)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.INPUT.SIZE = (16, 16)
    dm = data_manager.DataManager(cfg)
    assert dm.num_classes == 5 and len(dm.dataset.train_x) == 10
    batch = next(iter(dm.train_loader_x))
    assert tuple(batch["img"].shape) == (4, 3, 16, 16) and batch["label"].max() < 5


def test_build_dataset_announces_the_dataset_when_verbose(tmp_path, capsys):
    make_dataset("DescribableTextures", tmp_path)
    cfg = make_cfg(tmp_path, "DescribableTextures")
    build_dataset(cfg)
    assert "Loading dataset" not in capsys.readouterr().out
    cfg.VERBOSE = True
    build_dataset(cfg)
    assert capsys.readouterr().out.startswith("Loading dataset: DescribableTextures\n")
