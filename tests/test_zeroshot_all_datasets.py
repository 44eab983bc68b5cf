"""ZeroshotCLIP through train.py on a generated copy of each of the 15 data sets."""
import os
import re

import pytest

from tests import tiny_run
from tools.synthetic_data import make_dataset

YAMLS = {
    "ImageNet": "imagenet", "Caltech101": "caltech101", "OxfordPets": "oxford_pets",
    "StanfordCars": "stanford_cars", "OxfordFlowers": "oxford_flowers", "Food101": "food101",
    "FGVCAircraft": "fgvc_aircraft", "SUN397": "sun397", "DescribableTextures": "dtd", "EuroSAT": "eurosat",
    "UCF101": "ucf101", "ImageNetV2": "imagenetv2", "ImageNetSketch": "imagenet_sketch",
    "ImageNetA": "imagenet_a", "ImageNetR": "imagenet_r",
}


@pytest.mark.parametrize("name", sorted(YAMLS))
def test_zeroshot_runs_on_each_dataset(tmp_path, tiny_vit_path, name):
    info = make_dataset(name, str(tmp_path / "data"), num_classes=4, images_per_class=5, seed=0)
    out = str(tmp_path / "out")
    tiny_run.main(str(tmp_path / "data"), out, tiny_vit_path, "ZeroshotCLIP", "ZeroshotCLIP/vit_b16",
                  dataset=YAMLS[name], flags=["--eval-only"], batch=None, shots=None, epochs=None)
    with open(os.path.join(out, "log.txt")) as f:
        log = f.read()
    total = int(re.search(r"\* total: ([\d,]+)", log).group(1).replace(",", ""))
    assert total == sum(info["counts"]["test"])
    assert f"Dataset    {name}" in log
