"""Miniature copies of the 15 data sets in their real folder layouts (tiny real images).

Each generator writes the folders, images and annotation files the data set class reads
(split JSON, FGVC-Aircraft txt lists, Pets annotations, Stanford Cars .mat files, SUN397
and UCF101 txt lists, Flowers imagelabels.mat + cat_to_name.json, ImageNet classnames.txt),
so both paths can be exercised: "split file present" and "split file missing -> generate".

    python -m tools.synthetic_data OxfordPets --root DATA [--classes 5] [--images 6] [--no-split-file]

The data set is named as registered (OxfordPets) or as its config (oxford_pets), or "all".
"""
import argparse
import json
import os
import random
import re

import numpy as np
from PIL import Image

DEFAULT_NUM_CLASSES = 5
DEFAULT_IMAGES_PER_CLASS = 6

_IMAGENET = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark"),
             ("n01491361", "tiger shark"), ("n01494475", "hammerhead shark"), ("n01496331", "electric ray"),
             ("n01498041", "stingray"), ("n01514668", "rooster"), ("n01514859", "hen"), ("n01518878", "ostrich"),
             ("n01530575", "brambling"), ("n01531178", "goldfinch"), ("n01532829", "house finch"),
             ("n01534433", "junco"), ("n01537544", "indigo bunting"), ("n01558993", "American robin"),
             ("n01560419", "bulbul"), ("n01580077", "jay"), ("n01582220", "magpie"), ("n01592084", "chickadee")]


def _names(pool, n, extra):
    """The first ``n`` names of ``pool``, continued with ``extra(i)``."""
    return list(pool[:n]) + [extra(i) for i in range(len(pool), n)]


def _imagenet_classes(n):
    return _names(_IMAGENET, n, lambda i: (f"n{90000000 + i:08d}", f"synthetic class {i}"))


def _cut_50_20_30(n):
    n_train, n_val = round(n * 0.5), round(n * 0.2)
    return n_train, n_val, n - n_train - n_val


def _cut_trainval_test(n):
    """A third (at least one) is the official test set; trainval is split 80/20."""
    n_test = max(1, n // 3)
    n_val = round((n - n_test) * 0.2)
    return n - n_test - n_val, n_val, n_test


class _Writer:
    """Writes images and text files under one data set folder, with its own RNG."""

    def __init__(self, dataset_dir, seed, image_size):
        self.dir = dataset_dir
        self.rng = random.Random(seed)
        self.image_size = image_size

    def path(self, relpath):
        path = os.path.join(self.dir, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def image(self, relpath):
        # odd sizes from 8x8 to 40x30 unless a size is given
        h, w = self.image_size or (self.rng.randint(8, 40), self.rng.randint(8, 30))
        pixels = np.random.default_rng(self.rng.getrandbits(32)).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(self.path(relpath), format="PNG" if relpath.endswith(".png") else "JPEG")
        return relpath

    def text(self, relpath, lines):
        with open(self.path(relpath), "w") as f:
            f.write("".join(f"{line}\n" for line in lines))

    def savemat(self, relpath, data):
        from scipy.io import savemat

        savemat(self.path(relpath), data)


def _split_entries(w, prefix, entries, split_file):
    """Write ``split_file`` from entries (classname, relpaths, (n_train, n_val, n_test)) per label."""
    split = {"train": [], "val": [], "test": []}
    for label, (cname, paths, (n_tr, n_va, _)) in enumerate(entries):
        for key, part in (("train", paths[:n_tr]), ("val", paths[n_tr:n_tr + n_va]), ("test", paths[n_tr + n_va:])):
            split[key].extend([os.path.relpath(p, prefix) if prefix else p, label, cname] for p in part)
    with open(w.path(split_file), "w") as f:
        json.dump(split, f, indent=4)


def _folders(w, image_folder, folders, n, cut, renames=None, ignored=(), name_fn=None):
    """image_folder/<class>/<image>; label = case-sensitive sorted index of the folder."""
    name_fn = name_fn or (lambda c, i: f"{c}_{i + 1:04d}.jpg")
    for folder in ignored:
        for i in range(2):
            w.image(os.path.join(image_folder, folder, name_fn(folder, i)))
    entries = []
    for folder in sorted(folders):
        paths = [w.image(os.path.join(image_folder, folder, name_fn(folder, i))) for i in range(n)]
        entries.append(((renames or {}).get(folder, folder), paths, cut(n)))
    return entries


def _caltech101(w, c, n):
    pool = ["Faces", "Leopards", "Motorbikes", "airplanes", "accordion", "anchor", "ant", "barrel", "bass", "beaver",
            "binocular", "bonsai", "brain", "brontosaurus"]
    folders = _names(pool, c, lambda i: f"category_{i}")
    renames = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
    return _folders(w, "101_ObjectCategories", folders, n, _cut_50_20_30, renames,
                    ignored=("BACKGROUND_Google", "Faces_easy"), name_fn=lambda c, i: f"image_{i + 1:04d}.jpg")


def _dtd(w, c, n):
    pool = ["banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed", "cracked", "crosshatched",
            "crystalline", "dotted", "fibrous"]
    return _folders(w, "images", _names(pool, c, lambda i: f"texture{i}"), n, _cut_50_20_30)


def _food101(w, c, n):
    pool = ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad", "beignets",
            "bibimbap", "bread_pudding", "breakfast_burrito", "bruschetta", "caesar_salad"]
    folders = _names(pool, c, lambda i: f"dish_{i}")
    w.text("meta/classes.txt", sorted(folders))
    return _folders(w, "images", folders, n, _cut_50_20_30, name_fn=lambda c, i: f"{100000 + i}.jpg")


EUROSAT_RENAMES = {
    "AnnualCrop": "Annual Crop Land", "Forest": "Forest", "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road", "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings", "River": "River",
    "SeaLake": "Sea or Lake",
}


def _eurosat(w, c, n):
    if c > len(EUROSAT_RENAMES):
        raise ValueError(f"EuroSAT has {len(EUROSAT_RENAMES)} classes, got num_classes={c}")
    folders = sorted(EUROSAT_RENAMES)[:c]
    return _folders(w, "2750", folders, n, _cut_50_20_30, EUROSAT_RENAMES, name_fn=lambda c, i: f"{c}_{i + 1}.jpg")


# the 37 breeds in the order of their class ids (cats capitalised, as in the image names)
PET_BREEDS = [
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal", "Birman",
    "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel", "english_setter",
    "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond", "leonberger", "Maine_Coon",
    "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard",
    "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx", "staffordshire_bull_terrier", "wheaten_terrier",
    "yorkshire_terrier",
]


def _oxford_pets(w, c, n):
    # capitalised breeds are cats (species 1), lower-case ones dogs (species 2)
    pool = PET_BREEDS
    breeds = _names(pool, c, lambda i: f"breed{i}_dog")
    entries, lines = [], {"trainval": [], "test": []}
    for label, breed in enumerate(breeds):
        cut = _cut_trainval_test(n)
        names = [f"{breed}_{i + 1}" for i in range(n)]
        for i, imname in enumerate(names):
            part = "trainval" if i < cut[0] + cut[1] else "test"
            lines[part].append(f"{imname} {label + 1} {1 if breed[0].isupper() else 2} {label + 1}")
        entries.append((breed.lower(), [w.image(f"images/{m}.jpg") for m in names], cut))
    w.text("annotations/trainval.txt", lines["trainval"])
    w.text("annotations/test.txt", lines["test"])
    return entries


def _mat_struct(rows):
    """A 1 x N MATLAB struct array with fields bbox_*, class, fname (as in the Cars devkit)."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, (label, fname) in enumerate(rows):
        arr[0, i] = (np.array([[1]]), np.array([[1]]), np.array([[8]]), np.array([[8]]),
                     np.array([[label + 1]], dtype=np.uint8), np.array([fname]))
    return arr


def _stanford_cars(w, c, n):
    pool = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012", "BMW M3 Coupe 2012",
            "Tesla Model S Sedan 2012", "smart fortwo Convertible 2012", "Chevrolet Camaro Convertible 2012",
            "Dodge Challenger SRT8 2011", "Ford Mustang Convertible 2007", "Honda Odyssey Minivan 2012",
            "Jeep Wrangler SUV 2012", "Volvo XC90 SUV 2007"]
    models = _names(pool, c, lambda i: f"Maker Model{i} Sedan {2000 + i}")
    rows = {"cars_train": [], "cars_test": []}
    entries = []
    for label, model in enumerate(models):
        cut = _cut_trainval_test(n)
        paths = []
        for i in range(n):
            folder = "cars_train" if i < cut[0] + cut[1] else "cars_test"
            rows[folder].append((label, f"{len(rows[folder]) + 1:05d}.jpg"))
            paths.append(w.image(f"{folder}/{rows[folder][-1][1]}"))
        words = model.split(" ")
        entries.append((" ".join([words[-1]] + words[:-1]), paths, cut))
    for folder in rows:
        w.rng.shuffle(rows[folder])  # annotation order is not label order in the real files
    w.savemat("devkit/cars_train_annos.mat", {"annotations": _mat_struct(rows["cars_train"])})
    w.savemat("cars_test_annos_withlabels.mat", {"annotations": _mat_struct(rows["cars_test"])})
    names = np.empty((1, c), dtype=object)
    for i, model in enumerate(models):
        names[0, i] = np.array([model])
    w.savemat("devkit/cars_meta.mat", {"class_names": names})
    return entries


def _oxford_flowers(w, c, n):
    pool = ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold",
            "tiger lily", "moon orchid", "bird of paradise", "monkshood", "globe thistle", "snapdragon", "sunflower"]
    names = _names(pool, c, lambda i: f"flower {i}")
    order = [label for label in range(c) for _ in range(n)]
    w.rng.shuffle(order)  # images of a class are spread over the numbering, as in the real set
    paths = {label: [] for label in range(c)}
    for i, label in enumerate(order):
        paths[label].append(w.image(f"jpg/image_{i + 1:05d}.jpg"))
    w.savemat("imagelabels.mat", {"labels": np.array([[label + 1 for label in order]], dtype=np.uint8)})
    with open(w.path("cat_to_name.json"), "w") as f:
        json.dump({str(label + 1): name for label, name in enumerate(names)}, f)
    return [(names[label], paths[label], _cut_50_20_30(n)) for label in range(c)]


def _fgvc_aircraft(w, c, n):
    pool = ["707-320", "727-200", "A300B4", "ATR-42", "Cessna 172", "F/A-18", "Falcon 2000", "Tu-134", "737-800",
            "747-400", "A320", "BAE 146-200"]
    variants = _names(pool, c, lambda i: f"Model {i}")
    w.text("variants.txt", variants)
    lines, entries, next_id = {"train": [], "val": [], "test": []}, [], 1000000
    for variant in variants:
        cut = (n - 2 * (n // 3), n // 3, n // 3)
        paths = []
        for i, part in enumerate(["train"] * cut[0] + ["val"] * cut[1] + ["test"] * cut[2]):
            lines[part].append(f"{next_id + i} {variant}")
            paths.append(w.image(f"images/{next_id + i}.jpg"))
        next_id += n
        entries.append((variant, paths, cut))
    for part, part_lines in lines.items():
        w.text(f"images_variant_{part}.txt", part_lines)
    return entries


def _sun397(w, c, n):
    pool = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop", "/b/bathroom", "/c/campus", "/b/beach",
            "/b/bedroom", "/c/classroom", "/f/forest/broadleaf", "/k/kitchen", "/l/library/indoor", "/m/mountain"]
    classes = _names(pool, c, lambda i: f"/s/scene_{i}")
    w.text("ClassName.txt", classes)
    lines, entries = {"Training_01.txt": [], "Testing_01.txt": []}, []
    for cls in classes:
        cut = _cut_trainval_test(n)
        paths = []
        for i in range(n):
            imname = f"{cls}/sun_{w.rng.getrandbits(40):010x}.jpg"
            lines["Training_01.txt" if i < cut[0] + cut[1] else "Testing_01.txt"].append(imname)
            paths.append(w.image("SUN397" + imname))
        entries.append((" ".join(cls.split("/")[2:][::-1]), paths, cut))
    for name, part_lines in lines.items():
        w.text(name, part_lines)
    return entries


def _ucf101(w, c, n):
    pool = ["ApplyEyeMakeup", "Archery", "BabyCrawling", "BlowDryHair", "YoYo", "PlayingDaf", "Basketball", "Biking",
            "Drumming", "Fencing", "JumpRope", "Rowing"]
    actions = _names(pool, c, lambda i: f"SyntheticAction{chr(65 + i % 26)}")
    w.text("ucfTrainTestlist/classInd.txt", [f"{i + 1} {a}" for i, a in enumerate(actions)])
    lines, entries = {"trainlist01.txt": [], "testlist01.txt": []}, []
    for label, action in enumerate(actions):
        renamed = "_".join(re.findall("[A-Z][^A-Z]*", action))
        cut = _cut_trainval_test(n)
        paths = []
        for i in range(n):
            video = f"v_{action}_g{i // 2 + 1:02d}_c{i % 2 + 1:02d}"
            trainval = i < cut[0] + cut[1]
            line = f"{action}/{video}.avi" + (f" {label + 1}" if trainval else "")
            lines["trainlist01.txt" if trainval else "testlist01.txt"].append(line)
            paths.append(w.image(f"UCF-101-midframes/{renamed}/{video}.jpg"))
        entries.append((renamed, paths, cut))
    for name, part_lines in lines.items():
        w.text(f"ucfTrainTestlist/{name}", part_lines)
    return entries


def _imagenet(w, c, n):
    classes = _imagenet_classes(c)
    w.text("classnames.txt", [f"{wnid} {name}" for wnid, name in classes])
    n_val, k = max(1, n // 2), 0
    for wnid, _ in classes:
        for i in range(n):
            w.image(f"images/train/{wnid}/{wnid}_{i + 1}.JPEG")
        for _ in range(n_val):
            k += 1
            w.image(f"images/val/{wnid}/ILSVRC2012_val_{k:08d}.JPEG")
    return [name for _, name in classes], {"train": [n] * c, "val": [n_val] * c, "test": [n_val] * c}


def _variant(w, classes, folders, n, image_folder, name_fn):
    """classnames.txt lists ``classes``; ``folders`` are (folder name, class name) in label order."""
    w.text("classnames.txt", [f"{wnid} {name}" for wnid, name in classes])
    for folder, _ in folders:
        for i in range(n):
            w.image(f"{image_folder}/{folder}/{name_fn(i)}")
    counts = [n] * len(folders)
    return [name for _, name in folders], {"train": counts, "val": None, "test": counts}


def _imagenetv2(w, c, n):
    classes = _imagenet_classes(c)
    folders = [(str(label), name) for label, (_, name) in enumerate(classes)]
    return _variant(w, classes, folders, n, "imagenetv2-matched-frequency-format-val",
                    lambda i: f"{w.rng.getrandbits(64):016x}.jpeg")


def _imagenet_sketch(w, c, n):
    classes = _imagenet_classes(c)
    return _variant(w, classes, classes, n, "images", lambda i: f"sketch_{i + 1}.JPEG")


def _subset_variant(image_folder, prefix):
    """ImageNet-A / -R: classnames.txt has twice the classes; every second one has a folder."""

    def make(w, c, n):
        classes = _imagenet_classes(2 * c)
        out = _variant(w, classes, classes[1::2], n, image_folder, lambda i: f"{prefix}_{i + 1}.jpg")
        w.text(f"{image_folder}/README.txt", ["Synthetic miniature copy."])
        return out

    return make


# name -> (data set folder, generator, split file or None, split path prefix)
GENERATORS = {
    "ImageNet": ("imagenet", _imagenet, None, None),
    "Caltech101": ("caltech-101", _caltech101, "split_zhou_Caltech101.json", "101_ObjectCategories"),
    "OxfordPets": ("oxford_pets", _oxford_pets, "split_zhou_OxfordPets.json", "images"),
    "StanfordCars": ("stanford_cars", _stanford_cars, "split_zhou_StanfordCars.json", ""),
    "OxfordFlowers": ("oxford_flowers", _oxford_flowers, "split_zhou_OxfordFlowers.json", "jpg"),
    "Food101": ("food-101", _food101, "split_zhou_Food101.json", "images"),
    "FGVCAircraft": ("fgvc_aircraft", _fgvc_aircraft, None, None),
    "SUN397": ("sun397", _sun397, "split_zhou_SUN397.json", "SUN397"),
    "DescribableTextures": ("dtd", _dtd, "split_zhou_DescribableTextures.json", "images"),
    "EuroSAT": ("eurosat", _eurosat, "split_zhou_EuroSAT.json", "2750"),
    "UCF101": ("ucf101", _ucf101, "split_zhou_UCF101.json", "UCF-101-midframes"),
    "ImageNetV2": ("imagenetv2", _imagenetv2, None, None),
    "ImageNetSketch": ("imagenet-sketch", _imagenet_sketch, None, None),
    "ImageNetA": ("imagenet-adversarial", _subset_variant("imagenet-a", "adv"), None, None),
    "ImageNetR": ("imagenet-rendition", _subset_variant("imagenet-r", "art"), None, None),
}


def make_dataset(name, root, num_classes=DEFAULT_NUM_CLASSES, images_per_class=DEFAULT_IMAGES_PER_CLASS,
                 seed=0, with_split_file=True, image_size=None):
    """Write a miniature copy of data set ``name`` under ``root`` and describe it.

    ``image_size`` (h, w) fixes the image size; by default sizes vary from 8x8 to 40x30.
    Returns a dict: ``dataset_dir``; ``classnames`` in label order as the data set class
    reports them (class-name fixes applied); ``counts``: split -> images per label
    ("val" is None for the test-only variants, whose "train" equals "test");
    ``split_file``: the written split JSON or None.
    """
    if name not in GENERATORS:
        raise ValueError(f'Unknown data set "{name}". Known: {", ".join(sorted(GENERATORS))}.')
    if images_per_class < 4:
        raise ValueError(
            f"images_per_class must be at least 4 (each class needs train/val/test), got {images_per_class}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    folder, generate, split_file, prefix = GENERATORS[name]
    w = _Writer(os.path.join(root, folder), seed, image_size)
    result = generate(w, num_classes, images_per_class)
    split_path = None
    if isinstance(result, tuple):  # ImageNet family: (classnames, counts)
        classnames, counts = result
    else:  # per-label entries (classname, image paths, (n_train, n_val, n_test))
        classnames = [cname for cname, _, _ in result]
        counts = {key: [cut[i] for _, _, cut in result] for i, key in enumerate(("train", "val", "test"))}
        if split_file and with_split_file:
            _split_entries(w, prefix, result, split_file)
            split_path = os.path.join(w.dir, split_file)
    return {"name": name, "dataset_dir": w.dir, "classnames": classnames, "counts": counts, "split_file": split_path}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a miniature copy of a data set in its real layout.")
    parser.add_argument("dataset", help='registered name (OxfordPets), config name (oxford_pets) or "all"')
    parser.add_argument("--root", required=True, help="folder to write the data set folder(s) into")
    parser.add_argument("--classes", "--num-classes", dest="num_classes", type=int, default=DEFAULT_NUM_CLASSES)
    parser.add_argument("--images", "--images-per-class", dest="images_per_class", type=int,
                        default=DEFAULT_IMAGES_PER_CLASS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-split-file", action="store_true", help="leave the split JSON out (it is generated)")
    args = parser.parse_args(argv)
    if args.dataset == "all":
        names = sorted(GENERATORS)
    else:
        from datasets.names import resolve_dataset_name  # imported here: the generators need no data set code

        try:
            names = [resolve_dataset_name(args.dataset, GENERATORS)]
        except ValueError as e:
            parser.error(str(e))
    for name in names:
        info = make_dataset(name, args.root, args.num_classes, args.images_per_class, args.seed,
                            with_split_file=not args.no_split_file)
        sizes = ", ".join(f"{k} {sum(v)}" for k, v in info["counts"].items() if v is not None)
        print(f"{name}: {info['dataset_dir']} ({len(info['classnames'])} classes; {sizes})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
