"""Atomic pickle writes (reading goes through engine.utils.safe_pickle)."""
import os
import pickle


def dump_pickle_atomic(obj, fpath):
    """Pickle ``obj`` to ``fpath`` through a temporary file, so a crash never leaves half a file."""
    tmp = f"{fpath}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, fpath)
