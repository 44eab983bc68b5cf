"""The seed-keyed few-shot cache ``<dataset_dir>/split_fewshot/shot_{K}-seed_{SEED}.pkl``.

The cache holds the sampled items (absolute paths, before class subsampling), so all/base/
new runs and every trainer with the same K and seed share one few-shot pool. Caches pickled
by the reference code (Dassl's Datum) load too.
"""
import os
import random

from engine.utils import dump_pickle_atomic, load_pickle


def fewshot_cache_path(split_fewshot_dir, num_shots, seed):
    return os.path.join(split_fewshot_dir, f"shot_{num_shots}-seed_{seed}.pkl")


def _check_cached_images(data, path):
    for items in data.values():
        for item in items:
            if not os.path.isfile(item.impath):
                raise FileNotFoundError(
                    f'The few-shot cache "{path}" lists the image "{item.impath}", which does not exist '
                    "(the data set was moved, or the cache was written on another machine). Delete the "
                    "cache: it is sampled again, identically for the same split file and seed."
                )


def load_or_sample_fewshot(dataset, train, val, num_shots, seed, split_fewshot_dir):
    """K items per class for train and min(K, 4) for val, from the cache when it exists.

    ``val=None`` samples and caches the training set only (ImageNet). Sampling draws from
    Python's global ``random``, train before val (the reference's shots for a seed); the
    generator's state is then put back, so the run that writes the cache and every later run
    that loads it make the same draws afterwards (exact resume). NUM_SHOTS < 1 returns the inputs.
    """
    if num_shots < 1:
        return train, val
    path = fewshot_cache_path(split_fewshot_dir, num_shots, seed)
    if os.path.exists(path):
        print(f"Loading preprocessed few-shot data from {path}")
        data = load_pickle(path)
        wanted = ("train",) if val is None else ("train", "val")
        missing = [key for key in wanted if key not in data]
        if missing:
            raise ValueError(f'The few-shot cache "{path}" has no {missing} list: delete it to sample again.')
        _check_cached_images(data, path)
        return data["train"], (None if val is None else data["val"])

    state = random.getstate()
    train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
    data = {"train": train}
    if val is not None:
        val = dataset.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
        data["val"] = val
    random.setstate(state)
    print(f"Saving preprocessed few-shot data to {path}")
    dump_pickle_atomic(data, path)
    return train, val
