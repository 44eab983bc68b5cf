"""Unpickling of files written by the reference code (Dassl module paths map onto ours).

Reference few-shot caches pickle ``dassl.data.datasets.base_dataset.Datum`` and reference
checkpoints pickle ``dassl.optim.lr_scheduler.*WarmupScheduler`` objects. Our modules keep
the same sub-paths under ``engine.``, so renaming the top-level package is enough.
"""
import pickle


def _rename_module(module):
    if module == "dassl" or module.startswith("dassl."):
        return "engine" + module[len("dassl"):]
    return module


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(_rename_module(module), name)


def load(file, **kwargs):
    return Unpickler(file, **kwargs).load()


def loads(data, **kwargs):
    import io

    return Unpickler(io.BytesIO(data), **kwargs).load()


def load_pickle(fpath):
    """Read a pickle file written by us or by the reference (Dassl) code."""
    with open(fpath, "rb") as f:
        return load(f)


def dump_pickle_atomic(obj, fpath):
    """Pickle ``obj`` to ``fpath`` through a temporary file, so a crash never leaves half a file."""
    import os

    tmp = f"{fpath}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, fpath)


# torch.load(pickle_module=...) needs a module-like object with Unpickler and load.
class _PickleModule:
    Unpickler = Unpickler
    load = staticmethod(load)
    loads = staticmethod(loads)
    __name__ = "engine.utils.compat_pickle"


pickle_module = _PickleModule()
