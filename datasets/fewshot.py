"""The few-shot cache ``<dataset_dir>/split_fewshot/shot_{K}-seed_{SEED}.json``, keyed by its source.

The cache holds the sampled items (paths relative to the data set folder, before class
subsampling), so all/base/new runs and every trainer with the same K and seed share one
few-shot pool. It also records what it was sampled from: K, the seed and a digest of the
train/val lists (paths, labels, class names, in order). A cache whose record differs from the
current lists (the split file was replaced, images changed) is sampled again, with a line
saying so; so is an unreadable one. It is plain JSON: nothing in it can run.

The reference code's caches (``shot_{K}-seed_{SEED}.pkl``, pickles of Dassl's Datum) record
no source. One is used, read through the allow-listed unpickler, only when every item it
lists is in the current train (or val) list with the same label and class name; else the
few-shot data is sampled again into the JSON cache (the pickle is left in place). Our JSON
cache, when it matches, comes first.
"""
import hashlib
import json
import os
import random

from engine.utils import UntrustedPickleError, load_pickle, write_json_atomic

CACHE_FORMAT = 1


def fewshot_cache_path(split_fewshot_dir, num_shots, seed):
    return os.path.join(split_fewshot_dir, f"shot_{num_shots}-seed_{seed}.json")


def reference_cache_path(split_fewshot_dir, num_shots, seed):
    return os.path.join(split_fewshot_dir, f"shot_{num_shots}-seed_{seed}.pkl")


def relative_path(impath, root):
    """``impath`` relative to the data set folder ``root`` (left as is when outside it)."""
    return impath[len(root) + 1:] if impath.startswith(root + os.sep) else impath


def _entry(item, root):
    return [relative_path(item.impath, root), item.label, item.classname]


def source_digest(sources, root):
    """SHA256 of the lists sampled from ({"train": [...], "val": [...]}), paths relative to ``root``."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(json.dumps([name, [_entry(item, root) for item in sources[name]]]).encode("utf-8"))
    return digest.hexdigest()


def _read_json_cache(path, sources, key, root):
    """The cached lists when ``path`` was sampled from ``sources`` with ``key``; None (and why) otherwise."""
    try:
        with open(path) as f:
            data = json.load(f)
        recorded = {field: data[field] for field in key}
        entries = {name: data[name] for name in sources}
    except (OSError, ValueError, KeyError, TypeError) as e:  # ValueError: not JSON; the others: not our layout
        return None, f"it cannot be read ({type(e).__name__}: {e})"
    if recorded["source"] != key["source"]:
        return None, "it was sampled from other train/val lists (the split file or the images changed since)"
    if recorded != key:
        return None, f"it records {recorded}, not {key}"
    picked = {}
    for name, items in sources.items():
        by_path = {relative_path(item.impath, root): item for item in items}
        try:
            picked[name] = [by_path[entry[0]] for entry in entries[name]]
        except (KeyError, IndexError, TypeError):
            return None, f"its {name} list names images that are not in the current {name} list"
    return picked, ""


def _read_reference_cache(path, sources):
    """The lists of a reference cache when every item is in the current lists (same label and name)."""
    try:
        data = load_pickle(path)
    except UntrustedPickleError:  # a pickle naming other types is refused, never sampled over
        raise
    except Exception as e:  # a damaged pickle can fail in many ways; each means "sample again"
        return None, f"it cannot be read ({type(e).__name__}: {e})"
    if not isinstance(data, dict) or any(not isinstance(data.get(name), list) for name in sources):
        return None, f"it holds no {' and '.join(sources)} lists"
    picked = {}
    for name, items in sources.items():
        current = {item.impath: item for item in items}
        picked[name] = []
        for cached in data[name]:
            item = current.get(getattr(cached, "impath", None))
            if item is None or (item.label, item.classname) != (cached.label, cached.classname):
                return None, (f'its {name} list holds "{getattr(cached, "impath", cached)}", which is not in the '
                              f"current {name} list with the same label (the split file changed since it was sampled)")
            picked[name].append(item)
    return picked, ""


def _loaded(cache, picked):
    print(f"Loading preprocessed few-shot data from {cache}")
    return picked["train"], picked.get("val")


def load_or_sample_fewshot(dataset, train, val, num_shots, seed, split_fewshot_dir):
    """K items per class for train and min(K, 4) for val, from a matching cache when there is one.

    ``val=None`` samples and caches the training set only (ImageNet). Sampling draws from
    Python's global ``random``, train before val (the reference's shots for a seed); the
    generator's state is then put back, so the run that writes the cache and every later run
    that loads it make the same draws afterwards (exact resume). NUM_SHOTS < 1 returns the inputs.
    """
    if num_shots < 1:
        return train, val
    sources = {"train": train} if val is None else {"train": train, "val": val}
    root = os.path.dirname(os.path.abspath(split_fewshot_dir))  # the data set folder
    key = {"format": CACHE_FORMAT, "num_shots": num_shots, "seed": seed, "source": source_digest(sources, root)}
    path = fewshot_cache_path(split_fewshot_dir, num_shots, seed)
    reference = reference_cache_path(split_fewshot_dir, num_shots, seed)

    if os.path.exists(path):
        picked, why = _read_json_cache(path, sources, key, root)
        if picked is not None:
            return _loaded(path, picked)
        print(f'Not using the few-shot cache "{path}": {why}')
    if os.path.exists(reference):
        picked, why = _read_reference_cache(reference, sources)
        if picked is not None:
            return _loaded(reference, picked)
        print(f'Not using the few-shot cache "{reference}" (written by the reference code): {why}')

    state = random.getstate()
    train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
    data = {**key, "train": [_entry(item, root) for item in train]}
    if val is not None:
        val = dataset.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
        data["val"] = [_entry(item, root) for item in val]
    random.setstate(state)
    print(f"Saving preprocessed few-shot data to {path}")
    write_json_atomic(data, path)
    return train, val
