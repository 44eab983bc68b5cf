"""The errors a user meets first when pointing the framework at data, and their messages."""
import os
import shutil

import pytest

import datasets  # noqa: F401  (registers the data sets)
from datasets import split_files
from engine.config import get_cfg_default
from engine.data.datasets import Datum, build_dataset
from tools.synthetic_data import make_dataset


def make_cfg(root, name, num_shots=-1, seed=1, subsample="all"):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    cfg.VERBOSE = False
    return cfg


def test_empty_root():
    with pytest.raises(ValueError, match=r"DATASET.ROOT is empty: set it to the folder that holds the data set"):
        build_dataset(make_cfg("", "OxfordPets"))


def test_missing_root(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f'DATASET.ROOT "{root}" does not exist'):
        build_dataset(make_cfg(root, "OxfordPets"))


def test_missing_dataset_folder_names_the_expected_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(make_cfg(tmp_path, "Food101"))
    msg = str(e.value)
    assert 'Food101 expects a folder named "food-101" under DATASET.ROOT' in msg
    assert str(tmp_path / "food-101") in msg and "docs/DATASETS.md" in msg
    assert not (tmp_path / "food-101").exists()  # nothing is created on failure


def test_split_file_and_images_missing(tmp_path):
    (tmp_path / "dtd").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(make_cfg(tmp_path, "DescribableTextures"))
    msg = str(e.value)
    assert f'the split file "{tmp_path / "dtd" / "split_zhou_DescribableTextures.json"}" is missing' in msg
    assert "python -m datasets.split_files DescribableTextures --root" in msg
    assert "https://drive.google.com/file/d/1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x/view" in msg
    assert f"missing '{tmp_path / 'dtd' / 'images'}'" in msg


def test_split_file_missing_and_annotations_missing_lists_each(tmp_path):
    make_dataset("UCF101", tmp_path, with_split_file=False)
    shutil.rmtree(tmp_path / "ucf101" / "ucfTrainTestlist")
    with pytest.raises(FileNotFoundError, match=r"classInd.txt.*trainlist01.txt.*testlist01.txt"):
        build_dataset(make_cfg(tmp_path, "UCF101"))


def test_image_listed_in_split_file_but_absent(tmp_path):
    info = make_dataset("OxfordPets", tmp_path)
    missing = os.path.join(info["dataset_dir"], "images", "beagle_2.jpg")
    os.remove(missing)
    with pytest.raises(FileNotFoundError) as e:
        build_dataset(make_cfg(tmp_path, "OxfordPets"))
    assert f'Image "{missing}" is listed in "{info["split_file"]}" but does not exist' in str(e.value)


def test_image_listed_in_annotation_file_but_absent(tmp_path):
    info = make_dataset("FGVCAircraft", tmp_path)
    os.remove(os.path.join(info["dataset_dir"], "images", "1000000.jpg"))
    listing = os.path.join(info["dataset_dir"], "images_variant_train.txt")
    with pytest.raises(FileNotFoundError, match=f'1000000.jpg" is listed in "{listing}"'):
        build_dataset(make_cfg(tmp_path, "FGVCAircraft"))


def test_fgvc_without_its_official_files(tmp_path):
    info = make_dataset("FGVCAircraft", tmp_path)
    os.remove(os.path.join(info["dataset_dir"], "variants.txt"))
    with pytest.raises(FileNotFoundError, match=r"official files of fgvc-aircraft-2013b.*variants.txt"):
        build_dataset(make_cfg(tmp_path, "FGVCAircraft"))


def test_variant_without_classnames_txt(tmp_path):
    info = make_dataset("ImageNetSketch", tmp_path)
    os.remove(os.path.join(info["dataset_dir"], "classnames.txt"))
    with pytest.raises(FileNotFoundError, match=r"a copy of imagenet/classnames.txt"):
        build_dataset(make_cfg(tmp_path, "ImageNetSketch"))


def test_imagenetv2_missing_numbered_folder(tmp_path):
    info = make_dataset("ImageNetV2", tmp_path)
    shutil.rmtree(os.path.join(info["dataset_dir"], "imagenetv2-matched-frequency-format-val", "3"))
    with pytest.raises(FileNotFoundError, match=r'one folder per line of .*\("0".."4"\).*format-val/3" does not'):
        build_dataset(make_cfg(tmp_path, "ImageNetV2"))


def test_imagenet_folder_not_in_classnames(tmp_path):
    info = make_dataset("ImageNet", tmp_path)
    text = os.path.join(info["dataset_dir"], "classnames.txt")
    with open(text) as f:
        lines = f.readlines()
    with open(text, "w") as f:
        f.writelines(lines[1:])
    with pytest.raises(KeyError, match=r'n01440764" is not listed in'):
        build_dataset(make_cfg(tmp_path, "ImageNet"))


def test_unknown_dataset_name():
    with pytest.raises(ValueError) as e:
        build_dataset(make_cfg("x", "OxfordPet"))
    msg = str(e.value)
    assert 'Unknown DATASET.NAME "OxfordPet". Did you mean "OxfordPets"?' in msg
    assert "Registered data sets: Caltech101, DescribableTextures" in msg and "UCF101, " in msg and msg.endswith("WorldShapes.")


def test_bad_subsample_value(tmp_path):
    make_dataset("EuroSAT", tmp_path)
    with pytest.raises(ValueError, match='SUBSAMPLE_CLASSES must be one of "all", "base" or "new", got "novel"'):
        build_dataset(make_cfg(tmp_path, "EuroSAT", subsample="novel"))


def test_datum_of_missing_image_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'Image not found: "{tmp_path / "a.jpg"}"'):
        Datum(impath=str(tmp_path / "a.jpg"))
    with pytest.raises(TypeError, match="impath must be a str"):
        Datum(impath=tmp_path / "a.jpg")


def test_too_few_images_to_generate_a_split(tmp_path):
    info = make_dataset("DescribableTextures", tmp_path, with_split_file=False)
    banded = os.path.join(info["dataset_dir"], "images", "banded")
    for name in sorted(os.listdir(banded))[:3]:
        os.remove(os.path.join(banded, name))
    with pytest.raises(ValueError, match=f'Cannot split the 3 images of "{banded}".*at least 4 images'):
        build_dataset(make_cfg(tmp_path, "DescribableTextures"))


def test_split_file_download_offline_gives_one_error(tmp_path, monkeypatch, capsys):
    gdown = pytest.importorskip("gdown")
    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs["id"])
        raise ConnectionError("Failed to resolve drive.google.com")

    monkeypatch.setattr(gdown, "download", offline)
    with pytest.raises(split_files.DownloadError) as e:
        split_files.download_released_files("OxfordFlowers", tmp_path)
    msg = str(e.value)
    dest = tmp_path / "oxford_flowers"
    assert len(calls) == 2 and msg.startswith("Could not download the released file(s) of OxfordFlowers")
    assert (f"split_zhou_OxfordFlowers.json from https://drive.google.com/file/d/1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"
            f"/view -> put it at {dest / 'split_zhou_OxfordFlowers.json'}") in msg
    assert f"-> put it at {dest / 'cat_to_name.json'} (ConnectionError: Failed to resolve" in msg
    assert os.listdir(dest) == []  # no partial files left behind

    monkeypatch.setattr(gdown, "download", lambda *a, **k: None)  # gdown's other way of failing
    assert split_files.main(["EuroSAT", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"-> put it at {tmp_path / 'eurosat' / 'split_zhou_EuroSAT.json'} (the download returned no file)" in err
    assert split_files.main(["oxford_pets", "--root", str(tmp_path)]) == 1  # a config name works too
    assert f"-> put it at {tmp_path / 'oxford_pets' / 'split_zhou_OxfordPets.json'}" in capsys.readouterr().err
