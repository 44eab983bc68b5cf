"""The files released with CoOp that published numbers depend on, and where they come from.

Split files (``split_zhou_<Name>.json``) fix the train/val/test split; ImageNet's
``classnames.txt`` (also copied into each variant's folder) and Flowers' ``cat_to_name.json``
give the class names. FGVCAircraft needs none: its official split lists come with the data.
Download them with ``python -m datasets.split_files <Name> --root DATA``.
"""
from collections import namedtuple

# name: file name; gdrive_id: Google Drive file id (CoOp's DATASETS.md); dest: path inside the data set folder
ReleasedFile = namedtuple("ReleasedFile", ["name", "gdrive_id", "dest"])


def _one(name, gdrive_id):
    return ReleasedFile(name, gdrive_id, name)


_IMAGENET_CLASSNAMES = _one("classnames.txt", "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF")

RELEASED_FILES = {
    "ImageNet": (_IMAGENET_CLASSNAMES,),
    "Caltech101": (_one("split_zhou_Caltech101.json", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),),
    "OxfordPets": (_one("split_zhou_OxfordPets.json", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),),
    "StanfordCars": (_one("split_zhou_StanfordCars.json", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),),
    "OxfordFlowers": (
        _one("split_zhou_OxfordFlowers.json", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
        _one("cat_to_name.json", "1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"),
    ),
    "Food101": (_one("split_zhou_Food101.json", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),),
    "FGVCAircraft": (),
    "SUN397": (_one("split_zhou_SUN397.json", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),),
    "DescribableTextures": (_one("split_zhou_DescribableTextures.json", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),),
    "EuroSAT": (_one("split_zhou_EuroSAT.json", "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"),),
    "UCF101": (_one("split_zhou_UCF101.json", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),),
    # the variants use a copy of ImageNet's classnames.txt
    "ImageNetV2": (_IMAGENET_CLASSNAMES,),
    "ImageNetSketch": (_IMAGENET_CLASSNAMES,),
    "ImageNetA": (_IMAGENET_CLASSNAMES,),
    "ImageNetR": (_IMAGENET_CLASSNAMES,),
    # the generated world: `python -m tools.world.data` writes images and split files together
    **{name: () for name in ("WorldObjects", "WorldShapes", "WorldColors", "WorldPatterns", "WorldObjectsSketch",
                             "WorldObjectsCartoon", "WorldObjectsNoisy")},
    "ImageFolder": (),  # your own images: ImageFolder draws and writes its split file itself
}


def gdrive_url(gdrive_id):
    return f"https://drive.google.com/file/d/{gdrive_id}/view"


def released_files(name):
    """The ReleasedFile entries of data set ``name``."""
    if name not in RELEASED_FILES:
        raise ValueError(f'Unknown data set "{name}". Known: {", ".join(sorted(RELEASED_FILES))}.')
    return RELEASED_FILES[name]


def where_to_get(name, filename):
    """A sentence saying how to obtain one released file of data set ``name``."""
    for f in released_files(name):
        if f.name == filename:
            return (f"get it with `python -m datasets.split_files {name} --root <DATASET.ROOT>` "
                    f"or from {gdrive_url(f.gdrive_id)}")
    raise ValueError(f'"{filename}" is not a released file of {name}')
