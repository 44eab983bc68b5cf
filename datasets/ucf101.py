"""UCF101: 101 actions, one middle frame per video; split 01 (trainlist = trainval)."""
import os
import re

from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset


@DATASET_REGISTRY.register()
class UCF101(SplitDataset):
    dataset_dir = "ucf101"
    image_folder = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"

    def split_sources(self):
        names = ("classInd.txt", "trainlist01.txt", "testlist01.txt")
        return [self.image_dir] + [os.path.join(self.dataset_dir, "ucfTrainTestlist", n) for n in names]

    def generate_split(self):
        cname2lab = {}
        with open(os.path.join(self.dataset_dir, "ucfTrainTestlist", "classInd.txt"), "r") as f:
            for line in f:
                label, classname = line.strip().split(" ")
                cname2lab[classname] = int(label) - 1
        trainval = self.read_data(cname2lab, "trainlist01.txt")
        test = self.read_data(cname2lab, "testlist01.txt")
        train, val = splits.split_trainval(trainval)
        return train, val, test

    def read_data(self, cname2lab, text_file):
        """Lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi [label]"; the action is split at
        capitals ("Apply_Eye_Makeup"), which is both the class name and the frame folder."""
        text_file = os.path.join(self.dataset_dir, "ucfTrainTestlist", text_file)
        items = []
        with open(text_file, "r") as f:
            for line in f:
                action, filename = line.strip().split(" ")[0].split("/")
                renamed_action = "_".join(re.findall("[A-Z][^A-Z]*", action))
                impath = os.path.join(self.image_dir, renamed_action, filename.replace(".avi", ".jpg"))
                items.append(splits.make_datum(impath, cname2lab[action], renamed_action, text_file))
        return items
