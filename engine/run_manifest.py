"""``run.json``: what a run folder was made from, and whether the run finished.

Written beside log.txt when a run starts and again when it ends (atomically)::

    {
      "format": 1,
      "status": "running",                  # "finished" once its results are written
      "mode": "train",                      # "eval": an --eval-only run
      "trainer": "CoOp", "dataset": "OxfordPets", "seed": 1,
      "config": {"OPTIM.LR": 0.002, ...},   # the result-determining config (see result_config)
      "data": {"train_x": {"images": 64, "sha256": "..."}, "val": {...}, "test": {...}},
      "weights": {"MODEL.BACKBONE": {"file": "/abs/ViT-B-16.pt", "sha256": "..."}},
      "model": {"dir": "/abs/train/seed1", "files": {"prompt_learner/model-best.pth.tar": "sha256"}},
      "changes": [{"OPTIM.MAX_EPOCH": [10, 20]}]   # continued on purpose with these (TRAIN.ALLOW_CHANGED)
    }

"data" is each split's image list (paths relative to DATASET.ROOT, labels, class names, in order);
"weights" the content of every weights file the trainer loads; "model" (eval runs) the content of
the checkpoints evaluated. Two runs with equal entries compute the same thing.
"""
import hashlib
import json
import os
import os.path as osp

MANIFEST_NAME = "run.json"
FORMAT_VERSION = 1
RUNNING, FINISHED = "running", "finished"
DATA_SPLITS = ("train_x", "train_u", "val", "test")

# keys that do not change what a run computes: where files are, how often it logs and saves, and
# the switches that allow a rerun or an untrained evaluation (results.json records "untrained"), the
# image feature cache (the same features either way);
# files named by a key are compared by content ("weights"), not by path
NOT_RESULT_KEYS = frozenset((
    "OUTPUT_DIR", "RESUME", "DATASET.ROOT", "VERBOSE",
    "TRAIN.PRINT_FREQ", "TRAIN.CHECKPOINT_FREQ", "TRAIN.CHECKPOINT_ITER_FREQ", "TRAIN.ALLOW_CHANGED", "TEST.ALLOW_UNTRAINED",
    "TEST.FEATURE_CACHE", "TEST.FEATURE_CACHE_DIR",
    "MODEL.BACKBONE.PATH", "MODEL.INIT_WEIGHTS", "TRAINER.PROMPTKD.TEACHER_CKPT",
    "TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH", "TRAINER.TaskRes.ENHANCED_BASE",
))


def flatten(node, prefix=""):
    """{"A.B.C": value} of a nested config."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def result_config(cfg, with_seed=True):
    """The config keys that determine a run's result, as JSON values (tuples become lists)."""
    flat = flatten(cfg)
    kept = {k: v for k, v in sorted(flat.items()) if k not in NOT_RESULT_KEYS and (with_seed or k != "SEED")}
    return json.loads(json.dumps(kept))


def config_digest(cfg, with_seed=True):
    """sha256 of the result-determining config: equal digests, runs that compute the same thing
    (``with_seed=False``: the same experiment, e.g. the seeds of one table row)."""
    return hashlib.sha256(json.dumps(result_config(cfg, with_seed), sort_keys=True).encode()).hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_folder(folder):
    """sha256 over a folder's files: relative path and content hash of each, in sorted order."""
    digest = hashlib.sha256()
    for parent, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = osp.join(parent, name)
            digest.update(f"{osp.relpath(path, folder)}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def file_fingerprint(path):
    """{"file": absolute path, "sha256": content hash} of a weights file or model folder; a hub name
    (openclip:..., hf:...) or a missing path has no content here (None)."""
    if not osp.exists(path):
        return {"file": path, "sha256": None}
    path = osp.abspath(path)
    return {"file": path, "sha256": sha256_folder(path) if osp.isdir(path) else sha256_file(path)}


def weights_fingerprint(files):
    """{label: file_fingerprint} of the weights files ``{label: path}`` (None paths are left out)."""
    return {label: file_fingerprint(path) for label, path in sorted(files.items()) if path}


def items_digest(items, root=""):
    """sha256 of an image list: relative path, label and class name of every item, in order."""
    prefix = osp.join(osp.abspath(root), "") if root else ""
    digest = hashlib.sha256()
    for item in items:
        path = item.impath[len(prefix):] if prefix and item.impath.startswith(prefix) else item.impath
        digest.update(f"{path}\t{item.label}\t{item.classname}\n".encode())
    return digest.hexdigest()


def data_fingerprint(dataset, root=""):
    """{split: {"images": n, "sha256": items_digest}} of a data set's non-empty splits."""
    found = {}
    for split in DATA_SPLITS:
        items = getattr(dataset, split, None)
        if items:
            found[split] = {"images": len(items), "sha256": items_digest(items, root)}
    return found


def read_manifest(folder):
    """The run.json of ``folder`` as a dict, or None when there is none (or it is unreadable)."""
    path = osp.join(folder, MANIFEST_NAME)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        print(f'Note: "{path}" cannot be read ({e}): the folder\'s run is treated as one without run.json')
        return None
    return manifest if isinstance(manifest, dict) else None


def write_manifest(folder, manifest):
    """Write run.json (atomically)."""
    # imported here: engine.utils imports torch, and parse_test_res.py reads run.json without it
    from .utils.tools import write_json_atomic

    path = osp.join(folder, MANIFEST_NAME)
    write_json_atomic(manifest, path, indent=2, trailing_newline=True)
    return path


# ----- comparing a folder's run with this one ----------------------------------------------------
def _describe_data(entry):
    return "none" if entry is None else f"{entry['images']} images, content {entry['sha256'][:12]}"


def _describe_weights(entry):
    if entry is None:
        return "none"
    content = "missing" if entry.get("sha256") is None else f"content {entry['sha256'][:12]}"
    return f'"{entry["file"]}", {content}'


def config_differences(recorded, current):
    """{key: (there, now)} of the config keys both runs know that differ (a key only one side has
    comes from another code version: it cannot have been set by the other run)."""
    there, now = recorded.get("config") or {}, current.get("config") or {}
    return {k: (json.dumps(there[k]), json.dumps(now[k])) for k in sorted(set(there) & set(now)) if there[k] != now[k]}


def content_differences(recorded, current, missing_ok=False):
    """{"data:<split>" / "weights:<label>": (there, now)} where the data or the weights differ.

    ``missing_ok``: a weights file that is missing now is not a difference (it cannot be compared).
    """
    found = {}
    there, now = recorded.get("data") or {}, current.get("data") or {}
    for split in sorted(set(there) | set(now)):
        if there.get(split) != now.get(split):
            found[f"data:{split}"] = (_describe_data(there.get(split)), _describe_data(now.get(split)))
    there, now = recorded.get("weights") or {}, current.get("weights") or {}
    for label in sorted(set(there) | set(now)):
        old, new = there.get(label), now.get(label)
        if missing_ok and new is not None and new.get("sha256") is None:
            continue
        if (old or {}).get("sha256") != (new or {}).get("sha256"):
            found[f"weights:{label}"] = (_describe_weights(old), _describe_weights(new))
    return found


def describe_differences(differences):
    return "; ".join(f"{name}: {there} there, {now} now" for name, (there, now) in differences.items())
