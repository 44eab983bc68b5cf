"""Files as the reference code writes them (Dassl's class paths), for the tests that read them back."""
import pickle
import sys
import types


def dassl_modules(monkeypatch, classes):
    """Make ``{"dassl.x.y": {"Name": cls}}`` importable, so that pickle writes the reference's class paths."""
    for module, names in classes.items():
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            if ".".join(parts[:i]) not in sys.modules:
                monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        for name, cls in names.items():
            cls.__module__, cls.__qualname__, cls.__name__ = module, name, name
            setattr(sys.modules[module], name, cls)


def forget_dassl(monkeypatch):
    """Remove the stand-in modules again: only our loader can resolve the class paths now."""
    for module in [m for m in sys.modules if m == "dassl" or m.startswith("dassl.")]:
        monkeypatch.delitem(sys.modules, module)


def reference_pickle(monkeypatch, lists):
    """``lists`` ({"train": [Datum], ...}) pickled as the reference does: dassl.data.datasets.base_dataset.Datum."""

    class Datum:  # Dassl's: the same private attributes as ours
        def __init__(self, item):
            self._impath, self._label, self._domain, self._classname = item.impath, item.label, 0, item.classname

    dassl_modules(monkeypatch, {"dassl.data.datasets.base_dataset": {"Datum": Datum}})
    blob = pickle.dumps({k: [Datum(i) for i in v] for k, v in lists.items()}, protocol=pickle.HIGHEST_PROTOCOL)
    forget_dassl(monkeypatch)
    assert b"dassl.data.datasets.base_dataset" in blob
    return blob
