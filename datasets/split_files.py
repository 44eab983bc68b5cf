"""Download the files released with CoOp into the data set folders.

    python -m datasets.split_files OxfordPets --root DATA

puts ``split_zhou_OxfordPets.json`` into ``DATA/oxford_pets/``. Published numbers use
these files: a split generated locally depends on the file system's listing order.
"""
import argparse
import os
import sys

import gdown

from engine.data.datasets import DATASET_REGISTRY

from .names import resolve_dataset_name
from .released_files import RELEASED_FILES, gdrive_url, released_files


class DownloadError(RuntimeError):
    """A released file could not be fetched (typically: no internet access)."""


def download_released_files(name, root, overwrite=False):
    """Download the released files of data set ``name`` into ``root/<dataset folder>/``.

    Files already present are kept unless ``overwrite``. All failures are reported in one
    DownloadError that says which file goes where. Returns the paths of the files.
    """
    dataset_dir = os.path.join(os.path.abspath(os.path.expanduser(root)), DATASET_REGISTRY.get(name).dataset_dir)
    paths, failures = [], []
    for f in released_files(name):
        dst = os.path.join(dataset_dir, f.dest)
        paths.append(dst)
        if os.path.isfile(dst) and not overwrite:
            print(f"{dst} exists, kept")
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = f"{dst}.part"
        try:
            ok = gdown.download(id=f.gdrive_id, output=tmp, quiet=False) is not None and os.path.isfile(tmp)
        except Exception as e:  # gdown raises many types (network, quota, HTML page instead of file)
            ok, reason = False, f"{e.__class__.__name__}: {e}"
        else:
            reason = "the download returned no file"
        if ok:
            os.replace(tmp, dst)
            continue
        if os.path.exists(tmp):
            os.remove(tmp)
        failures.append(f"  - {f.name} from {gdrive_url(f.gdrive_id)} -> put it at {dst} ({reason})")
    if failures:
        raise DownloadError(
            f"Could not download the released file(s) of {name}. Download them on a machine with "
            "internet access and copy them here:\n" + "\n".join(failures)
        )
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description="Download the split files released with CoOp.")
    parser.add_argument("dataset", help="registered data set name (OxfordPets) or config name (oxford_pets)")
    parser.add_argument("--root", required=True, help="DATASET.ROOT: the folder holding all data set folders")
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    args = parser.parse_args(argv)
    try:
        args.dataset = resolve_dataset_name(args.dataset, RELEASED_FILES)
    except ValueError as e:
        parser.error(str(e))
    if not RELEASED_FILES[args.dataset]:
        print(f"{args.dataset} has no released split file: it uses the official split files of the data set.")
        return 0
    try:
        for path in download_released_files(args.dataset, args.root, overwrite=args.overwrite):
            print(f"OK: {path}")
    except DownloadError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
