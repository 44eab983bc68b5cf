"""tools/world/tta_step_size.py: the distance one image's update moves the adapted features."""
import re

import pytest

from image_folder_data import make_image_folder
from tools.tiny_clip import tiny_clip_model
from tools.world import tta_step_size
from tta.classification.data import load_test_set
from engine.utils import read_image


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("tta") / "set", splits={"test": 2})


@pytest.mark.parametrize("method", tta_step_size.METHODS)
def test_the_shift_is_zero_at_lr_zero_and_grows_with_lr(folder, method):
    items, classnames = load_test_set("ImageFolder", folder)
    images = [read_image(item.impath) for item in items[:2]]

    def shift(lr):
        args = tta_step_size.method_args(method, lr)
        args.batch_size = 16
        reward = tiny_clip_model(seed=3, embed_dim=48, vision_layers=3, text_layers=3) if method != "tpt" else None
        return tta_step_size.mean_shift(args, tiny_clip_model(seed=0), reward, images, classnames)

    assert shift(0.0) == 0.0
    small, large = shift(1e-4), shift(1e-2)
    assert 0.0 < small < large


def test_the_table_rows_are_consistent(folder, tiny_vit_path, tiny_teacher_path, capsys):
    assert tta_step_size.main(["--image_folder", folder, "--world-clip", tiny_vit_path, "--reward-clip",
                               tiny_teacher_path, "--images", "2", "--shape", "tiny", "--threads", "1"]) == 0
    rows = re.findall(r"^\| (tpt|rlcf-prompt|rlcf-tune) \| (\S+) \| (\d+) \| (\S+) \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|$",
                      capsys.readouterr().out, re.M)
    assert [r[0] for r in rows] == list(tta_step_size.METHODS)
    for method, lr, steps, reference, world, ratio, world_lr, _ in rows:
        # the tta.py defaults: TPT 1 step at 5e-3, RLCF 3 steps (prompt 7e-3, image encoder 1e-5)
        assert (float(lr), int(steps)) == {"tpt": (5e-3, 1), "rlcf-prompt": (7e-3, 3), "rlcf-tune": (1e-5, 3)}[method]
        assert float(ratio) == pytest.approx(float(reference) / float(world), abs=0.06)
        assert float(world_lr) == pytest.approx(float(lr) * float(reference) / float(world), rel=0.06)
