"""ImageNetV2 (matched frequency): folders "0".."999" named by label (test only)."""
import os

from engine.data.datasets import DATASET_REGISTRY
from engine.utils import listdir_nohidden

from .imagenet import ImageNetVariant
from .splits import make_datum


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetVariant):
    dataset_dir = "imagenetv2"
    image_folder = "imagenetv2-matched-frequency-format-val"

    def read_data(self, classnames, text_file):
        """Folder "<label>" holds class ``label``, named by line ``label`` of classnames.txt
        (which must be in ImageNet's sorted-wnid order)."""
        names = list(classnames.values())
        items = []
        for label, classname in enumerate(names):
            class_dir = os.path.join(self.image_dir, str(label))
            if not os.path.isdir(class_dir):
                raise FileNotFoundError(
                    f'ImageNetV2 expects one folder per line of "{text_file}" ("0".."{len(names) - 1}"), '
                    f'but "{class_dir}" does not exist.'
                )
            for imname in listdir_nohidden(class_dir):
                items.append(make_datum(os.path.join(class_dir, imname), label, classname, class_dir))
        return items
