"""Pickled files from others (checkpoints, few-shot caches, image lists) read as data, never as code.

Unpickling can call any function a file names, so a pickle is only ever read by an unpickler
that resolves the names on one allow-list: tensors, plain Python and NumPy values, Dassl's
``Datum`` (onto ours) and the optimizer / LR scheduler objects that Dassl checkpoints pickle
inside their scheduler state (as inert ``PickledObject`` records: their state, never their
code). Any other name is refused with an ``UntrustedPickleError`` that names the file and the
refused ``module.Class``. A user who trusts a file outside the list names it (or its folder)
in the environment variable ``TRUST_PICKLED_FILES``; only then is the rest unpickled in full.
"""
import codecs
import os
import pickle
import types
import zipfile
from collections import Counter, OrderedDict, defaultdict

import numpy as np
import torch

TRUST_ENV = "TRUST_PICKLED_FILES"

# Python 2 module names that protocol-2 pickles (torch.save's default) still carry
_PY2_MODULES = {"__builtin__": "builtins"}

# classes kept as records: what Dassl checkpoints pickle in their scheduler state (a warmup
# wrapper's successor with its own optimizer copy), and Dassl's scheduler and RAdam classes
_RECORDED = (
    "torch.optim.lr_scheduler.StepLR",
    "torch.optim.lr_scheduler.MultiStepLR",
    "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.sgd.SGD",
    "torch.optim.adam.Adam",
    "torch.optim.adamw.AdamW",
    "torch.optim.rmsprop.RMSprop",
    "dassl.optim.radam.RAdam",
    "dassl.optim.lr_scheduler.ConstantWarmupScheduler",
    "dassl.optim.lr_scheduler.LinearWarmupScheduler",
)
_TENSOR_REBUILDS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                    "_rebuild_parameter_with_state")


class UntrustedPickleError(pickle.UnpicklingError):
    """A pickled file names a type outside the allow-list (and is not trusted by TRUST_PICKLED_FILES)."""

    def __init__(self, path, global_name):
        self.path, self.global_name = path, global_name
        super().__init__(
            f'Refused to load "{path}": it holds a pickled {global_name}, which is not among the types this '
            "project reads from files (tensors, plain Python and NumPy values, Dassl's Datum and the optimizer "
            "and LR scheduler state in Dassl checkpoints); unpickling it could run code from the file. Get the "
            "file from a source you trust. If you trust this file and whoever made it, allow it with "
            f'{TRUST_ENV}="{os.path.abspath(path)}" (files or folders, separated by "{os.pathsep}"): it is then '
            "unpickled in full, which runs whatever code it holds."
        )


class PickledObject:
    """An object of an allow-listed class kept as data: ``qualified_name``, ``args`` and ``state``.

    Made without running the class's code; ``state`` is what the class pickled (for an LR
    scheduler or an optimizer, its attribute dict).
    """

    qualified_name = ""

    def __new__(cls, *args):
        obj = super().__new__(cls)
        obj.args, obj.state = args, None
        return obj

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"PickledObject({self.qualified_name})"


def record_class(qualified_name):
    """A PickledObject subclass standing for the class ``qualified_name`` (unpickling needs a class)."""
    name = qualified_name.rpartition(".")[2]
    return type(name, (PickledObject,), {"qualified_name": qualified_name, "__module__": __name__})


def allowed_globals():
    """(module, name) -> the object a pickle may use under that name."""
    from engine.data.datasets.base_dataset import Datum  # imported here: engine.data imports engine.utils

    allowed = {("builtins", t.__name__): t for t in (dict, list, tuple, set, frozenset, int, float, complex,
                                                      bool, str, bytes, bytearray, slice, range)}
    allowed.update({("collections", t.__name__): t for t in (OrderedDict, defaultdict, Counter)})
    allowed[("_codecs", "encode")] = codecs.encode  # protocol 2 writes bytes this way
    allowed.update({("torch._utils", n): getattr(torch._utils, n) for n in _TENSOR_REBUILDS if hasattr(torch._utils, n)})
    allowed[("torch._tensor", "_rebuild_from_type_v2")] = torch._tensor._rebuild_from_type_v2
    allowed.update({("torch", "Size"): torch.Size, ("torch", "device"): torch.device, ("torch", "Tensor"): torch.Tensor,
                    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter})
    allowed.update({("torch", n): v for n, v in vars(torch).items() if isinstance(v, torch.dtype)})
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    allowed.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype})
    for module in ("dassl.data.datasets.base_dataset", "engine.data.datasets.base_dataset"):
        allowed[(module, "Datum")] = Datum
    for qualified_name in _RECORDED:
        allowed[tuple(qualified_name.rsplit(".", 1))] = record_class(qualified_name)
    return allowed


def is_trusted(path):
    """True when ``path`` (or a folder above it) is listed in TRUST_PICKLED_FILES."""
    real = os.path.realpath(path)
    for entry in os.environ.get(TRUST_ENV, "").split(os.pathsep):
        if not entry:
            continue
        trusted = os.path.realpath(os.path.expanduser(entry))
        if real == trusted or real.startswith(trusted.rstrip(os.sep) + os.sep):
            return True
    return False


class SafeUnpickler(pickle.Unpickler):
    """Resolves global names through ``resolve(module, name)`` (None: refused, unless ``trusted``)."""

    def __init__(self, file, path, resolve, trusted=False, **kwargs):
        super().__init__(file, **kwargs)
        self._path, self._resolve, self._trusted = path, resolve, trusted
        self._announced = False

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)
        found = self._resolve(module, name)
        if found is not None:
            return found
        if not self._trusted:
            raise UntrustedPickleError(self._path, f"{module}.{name}")
        if not self._announced:
            print(f'Unpickling "{self._path}" in full ({module}.{name} is not on the allow-list; trusted by {TRUST_ENV})')
            self._announced = True
        if module == "dassl" or module.startswith("dassl."):
            module = "engine" + module[len("dassl"):]  # our modules keep Dassl's sub-paths
        return super().find_class(module, name)


def _unpickler_class(path):
    """SafeUnpickler for ``path`` with the allow-list, constructed as ``Unpickler(file, **kwargs)``."""
    allowed, trusted = allowed_globals(), is_trusted(path)

    class Unpickler(SafeUnpickler):
        def __init__(self, file, **kwargs):
            super().__init__(file, path, lambda module, name: allowed.get((module, name)), trusted, **kwargs)

    return Unpickler


def load_pickle(path):
    """A plain pickle file (a few-shot cache, ImageNet's preprocessed.pkl) read through the allow-list."""
    with open(path, "rb") as f:
        return _unpickler_class(path)(f).load()


def torch_pickle_module(path):
    """A pickle module for ``torch.load(pickle_module=...)`` that reads ``path`` through the allow-list."""
    unpickler = _unpickler_class(path)
    return types.SimpleNamespace(Unpickler=unpickler, load=lambda file, **kw: unpickler(file, **kw).load(),
                                 __name__=__name__)


def torch_load(path, map_location="cpu"):
    """``torch.load`` of a file from anyone: ``weights_only`` first, else the allow-list.

    Our own files hold only tensors and plain values and pass ``weights_only``; the reference's
    checkpoints pickle optimizer and scheduler objects, which only the allow-list admits (as
    records). A TorchScript archive is never dispatched to ``torch.jit.load`` here.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass  # a name outside torch's own weights-only list: the allow-list decides
    if is_torchscript_archive(path):
        raise RuntimeError(f'"{path}" is a TorchScript archive, not a checkpoint saved with torch.save')
    return torch.load(path, map_location=map_location, weights_only=False, pickle_module=torch_pickle_module(path))


def is_torchscript_archive(path):
    """A TorchScript archive is a zip holding code/ and constants.pkl; torch.save zips hold neither."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())
