"""Datum / DatasetBase / split helpers in isolation, the released-file table and the generator CLI."""
import json
import os
import random
import re

import pytest

import datasets  # noqa: F401  (registers the data sets)
from datasets import split_files, splits
from datasets.oxford_pets import OxfordPets
from engine.data.datasets import DATASET_REGISTRY, Datum, DatasetBase
from tools import synthetic_data


def _datums(folder, labels):
    out = []
    for label in labels:
        for i in range(5):
            path = folder / f"{label}_{i}.jpg"
            path.write_bytes(b"x")
            out.append(Datum(impath=str(path), label=label, classname=f"c{label}"))
    return out


@pytest.fixture
def items(tmp_path):
    """label -> 5 Datum each, labels 4, 1, 2 in that order of first appearance."""
    return _datums(tmp_path, (4, 1, 2))


@pytest.fixture
def classes(tmp_path):
    """A data set's labels: 2, 0, 1 in that order of first appearance, 5 Datum each."""
    return _datums(tmp_path, (2, 0, 1))


def test_datum_properties_are_read_only(items):
    d = items[0]
    assert (d.label, d.domain, d.classname) == (4, 0, "c4") and d.impath.endswith("4_0.jpg")
    assert vars(d).keys() == {"_impath", "_label", "_domain", "_classname"}  # Dassl's pickled attributes
    with pytest.raises(AttributeError):
        d.label = 3


def test_dataset_base_classes_come_from_train_x(classes):
    ds = DatasetBase(train_x=classes[5:], test=classes[5:])  # labels 0 and 1
    assert ds.num_classes == 2 and ds.lab2cname == {0: "c0", 1: "c1"} and ds.classnames == ["c0", "c1"]
    assert DatasetBase(train_x=classes).num_classes == 3
    with pytest.raises(ValueError, match=r"The training set \(train_x\) is empty"):
        DatasetBase(train_x=[])


def test_dataset_base_refuses_labels_it_cannot_train_or_score(classes, items):
    # a test label beyond the trained classes would be a silent miss
    with pytest.raises(ValueError, match=r'the test image ".*2_0.jpg" has label 2, outside the 2 classes .*labels 0..1'):
        DatasetBase(train_x=classes[5:], test=classes)
    # a gap: the model would get max + 1 outputs but only the names of the labels present
    with pytest.raises(ValueError, match=r"no training image has label\(s\) \[0, 3\].*up to the largest \(4\)"):
        DatasetBase(train_x=items)
    renamed = classes[:5] + [Datum(impath=d.impath, label=d.label, classname="other") for d in classes[5:6]]
    with pytest.raises(ValueError, match=r'label 0 has two class names in train_x: "other" .* and "c0"'):
        DatasetBase(train_x=renamed + classes[5:])


def test_split_by_label_keeps_first_appearance_order(classes):
    ds = DatasetBase(train_x=classes)
    assert list(ds.split_dataset_by_label(classes)) == [2, 0, 1]
    assert list(ds.split_dataset_by_domain(classes)) == [0]


def test_generate_fewshot_matches_python_random_sample(classes):
    ds = DatasetBase(train_x=classes)
    random.seed(5)
    a, b = ds.generate_fewshot_dataset(classes, classes[:7], num_shots=3)
    random.seed(5)
    expected = []
    for label in (2, 0, 1):
        expected += random.sample([i for i in classes if i.label == label], 3)
    assert a == expected
    assert b[3:] == classes[5:7]  # label 0 has 2 items in classes[:7]: kept whole, in order
    assert ds.generate_fewshot_dataset(classes, num_shots=-1) is classes
    assert len(ds.generate_fewshot_dataset(classes[:2], num_shots=4, repeat=True)) == 4


def test_check_input_domains():
    class Domains(DatasetBase):
        domains = ["photo", "sketch"]

        def __init__(self):  # no data needed to check domain names
            pass

    d = Domains()
    d.check_input_domains(["photo"], ["sketch"])
    with pytest.raises(ValueError, match=r"Input domain must belong to \['photo', 'sketch'\], but got \[art\]"):
        d.check_input_domains(["art"], ["sketch"])
    with pytest.raises(ValueError, match="SOURCE_DOMAINS is empty"):
        d.check_input_domains([], ["sketch"])


def test_subsample_classes_uses_the_first_argument(items):
    base_train, base_test = splits.subsample_classes(items[5:], items, subsample="base")
    # labels of the first argument are {1, 2}: base = [1], relabelled to 0
    assert {i.label for i in base_train} == {0} and {i.classname for i in base_test} == {"c1"}
    new_train, new_test = splits.subsample_classes(items, items, subsample="new")
    # labels {1, 2, 4}: ceil(3 / 2) = 2 base labels, new = [4] -> 0
    assert [i.label for i in new_test] == [0] * 5 and {i.classname for i in new_train} == {"c4"}
    assert splits.subsample_classes(items, subsample="all") == (items,)
    assert OxfordPets.subsample_classes is splits.subsample_classes  # the reference's call site works


def test_save_and_read_split_strip_the_prefix(tmp_path, items):
    prefix = str(tmp_path)
    split_path = tmp_path / "split.json"
    splits.save_split(items, items[5:10], items[10:], str(split_path), prefix)
    raw = json.loads(split_path.read_text())
    assert raw["train"][0] == ["4_0.jpg", 4, "c4"] and len(raw["test"]) == 5
    assert split_path.read_text().startswith('{\n    "train": [\n        [\n            "4_0.jpg",')
    train, val, test = splits.read_split(str(split_path), prefix)
    assert [(i.impath, i.label, i.classname) for i in val] == [(i.impath, i.label, i.classname) for i in items[5:10]]


def test_split_trainval_per_class_counts(items):
    random.seed(0)
    train, val = splits.split_trainval(items + items[:5] + items[:2])  # label 4 has 12 items
    counts = {label: sum(1 for i in val if i.label == label) for label in (4, 1, 2)}
    assert counts == {4: round(2.4), 1: 1, 2: 1} and len(train) == 22 - 4
    with pytest.raises(ValueError, match=r"class 4 \(c4\) .* 2 trainval images and round\(0.2 \* 2\) = 0"):
        splits.split_trainval(items[:2])


def test_read_and_split_data_rounds_half_to_even(tmp_path):
    for folder, n in (("b_odd", 5), ("a_seven", 7), ("C_upper", 4)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            (tmp_path / folder / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    random.seed(0)
    train, val, test = splits.read_and_split_data(str(tmp_path), new_cnames={"b_odd": "odd"})
    count = {split: [sum(1 for i in items if i.label == y) for y in range(3)] for split, items in
             (("train", train), ("val", val), ("test", test))}
    # labels follow the case-sensitive folder sort: C_upper, a_seven, b_odd
    # 4 -> 2/1/1; 7 -> round(3.5) = 4 / 1 / 2; 5 -> round(2.5) = 2 / 1 / 2
    assert count == {"train": [2, 4, 2], "val": [1, 1, 1], "test": [1, 2, 2]}
    assert {(i.label, i.classname) for i in train} == {(0, "C_upper"), (1, "a_seven"), (2, "odd")}


def test_released_file_table_covers_every_registered_dataset():
    assert set(split_files.RELEASED_FILES) == set(DATASET_REGISTRY.registered_names())
    assert split_files.RELEASED_FILES["FGVCAircraft"] == ()
    for name, files in split_files.RELEASED_FILES.items():
        for f in files:
            assert re.fullmatch(r"[\w-]{33}", f.gdrive_id) and f.dest == f.name
            if f.name.startswith("split_zhou_"):
                assert f.name == f"split_zhou_{name}.json" == DATASET_REGISTRY.get(name).split_file
    assert split_files.main(["FGVCAircraft", "--root", "unused"]) == 0


def test_released_file_already_present_is_kept(tmp_path, monkeypatch):
    import gdown

    monkeypatch.setattr(gdown, "download", lambda *a, **k: pytest.fail("must not download"))
    (tmp_path / "eurosat").mkdir()
    (tmp_path / "eurosat" / "split_zhou_EuroSAT.json").write_text("{}")
    kept = split_files.download_released_files("EuroSAT", tmp_path)
    assert kept == [str(tmp_path / "eurosat" / "split_zhou_EuroSAT.json")]


def test_released_file_download_success(tmp_path, monkeypatch):
    import gdown

    def fake(id, output, quiet):
        with open(output, "w") as f:
            f.write(id)
        return output

    monkeypatch.setattr(gdown, "download", fake)
    [path] = split_files.download_released_files("ImageNetA", tmp_path)
    assert path == str(tmp_path / "imagenet-adversarial" / "classnames.txt")
    assert open(path).read() == "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"


def test_config_files_name_registered_datasets_and_resolve_to_them():
    from datasets.names import config_names, resolve_dataset_name

    stems = config_names()
    known = DATASET_REGISTRY.registered_names()
    # 15 real + 7 generated world sets + ImageFolder (your own)
    assert len(stems) == 23 and sorted(stems.values()) == sorted(known)
    assert resolve_dataset_name("imagefolder", known) == "ImageFolder"
    assert stems["oxford_pets"] == "OxfordPets" and stems["dtd"] == "DescribableTextures"
    assert resolve_dataset_name("oxford_pets", known) == "OxfordPets"
    assert resolve_dataset_name("imagenet-r", known) == "ImageNetR"
    assert resolve_dataset_name("eurosat", known) == "EuroSAT"
    with pytest.raises(ValueError, match='Unknown data set "pets".*config name from configs/datasets/'):
        resolve_dataset_name("pets", known)


def test_synthetic_cli_takes_config_names_and_short_flags(tmp_path, capsys):
    # the form scripts/textrefiner/demo.sh uses
    assert synthetic_data.main(["oxford_pets", "--root", str(tmp_path), "--classes", "10", "--images", "8"]) == 0
    assert "OxfordPets: " in capsys.readouterr().out
    with open(tmp_path / "oxford_pets" / "annotations" / "trainval.txt") as f:
        breeds = sorted({line.split(" ")[0].rsplit("_", 1)[0] for line in f})
    assert len(breeds) == 10 and "boxer" in breeds and "British_Shorthair" in breeds  # real breed names
    assert len(os.listdir(tmp_path / "oxford_pets" / "images")) == 80
    with pytest.raises(SystemExit):
        synthetic_data.main(["pets", "--root", str(tmp_path)])
    assert 'Unknown data set "pets"' in capsys.readouterr().err


def test_synthetic_generator_cli_and_image_sizes(tmp_path, capsys):
    assert synthetic_data.main(["Caltech101", "--root", str(tmp_path), "--num-classes", "3"]) == 0
    assert "Caltech101: " in capsys.readouterr().out
    folders = sorted(os.listdir(tmp_path / "caltech-101" / "101_ObjectCategories"))
    assert folders == ["BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes"]
    from PIL import Image

    info = synthetic_data.make_dataset("EuroSAT", tmp_path, num_classes=2, image_size=(7, 9))
    with Image.open(os.path.join(info["dataset_dir"], "2750", "AnnualCrop", "AnnualCrop_1.jpg")) as img:
        assert img.size == (9, 7) and img.format == "JPEG"
    with pytest.raises(ValueError, match="images_per_class must be at least 4"):
        synthetic_data.make_dataset("EuroSAT", tmp_path, images_per_class=3)


@pytest.mark.parametrize("archive", ["data.zip", "data.tar.gz"])
def test_download_data_extracts_next_to_the_archive(tmp_path, monkeypatch, archive):
    import tarfile
    import zipfile

    import gdown

    src = tmp_path / "a.txt"
    src.write_text("hello")

    def fake(url, output, quiet):
        if output.endswith(".zip"):
            with zipfile.ZipFile(output, "w") as zf:
                zf.write(src, "pkg/a.txt")
        else:
            with tarfile.open(output, "w:gz") as tf:
                tf.add(src, "pkg/a.txt")
        return output

    monkeypatch.setattr(gdown, "download", fake)
    dst = tmp_path / "dl" / archive
    DatasetBase.download_data(None, "https://drive.google.com/uc?id=x", str(dst))
    assert (tmp_path / "dl" / "pkg" / "a.txt").read_text() == "hello"
    with pytest.raises(NotImplementedError, match=r"only .zip, .tar and .tar.gz"):
        DatasetBase.download_data(None, "u", str(tmp_path / "dl" / "data.rar"))
