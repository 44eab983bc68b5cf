"""Tee stdout to OUTPUT_DIR/log.txt, keeping any earlier log under a timestamped name."""
import os
import os.path as osp
import sys
import time

from .faults import debug_enabled
from .tools import mkdir_if_missing


class Logger:
    """Writes every message to the console and to a file (flush also fsyncs the file)."""

    def __init__(self, fpath, console):
        self.console = console
        self.file = open(fpath, "w")

    def write(self, msg):
        self.console.write(msg)
        self.file.write(msg)

    def flush(self):
        self.console.flush()
        self.file.flush()
        os.fsync(self.file.fileno())

    def isatty(self):
        return False

    def close(self):
        self.file.close()

    def __getattr__(self, name):
        # anything else (encoding, fileno, ...) behaves as the console stream
        return getattr(self.console, name)


def setup_logger(output=None):
    """Replace sys.stdout by a Logger writing to ``output/log.txt`` (or ``output`` if a .txt/.log).

    An existing file is never overwritten: the new log gets a ``-YYYY-MM-DD-HH-MM-SS`` suffix,
    as in Dassl. Returns the log file path.
    """
    if output is None:
        return None
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = osp.join(output, "log.txt")
    if osp.exists(fpath):
        fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")
    mkdir_if_missing(osp.dirname(fpath) or ".")
    console = sys.stdout.console if isinstance(sys.stdout, Logger) else sys.stdout
    if isinstance(sys.stdout, Logger):
        sys.stdout.close()
    sys.stdout = Logger(fpath, console)
    return fpath


def restore_stdout():
    """Undo setup_logger (used when train.main() is called from Python more than once)."""
    if isinstance(sys.stdout, Logger):
        sys.stdout.flush()
        sys.stdout.close()
        sys.stdout = sys.stdout.console


def log_only(msg):
    """Write ``msg`` to the log file alone (long dumps stay off the console; TEXTREFINER_DEBUG=1 shows them
    there too); without a log (no setup_logger), to stdout."""
    out = sys.stdout
    if isinstance(out, Logger):
        out.file.write(msg)
        if debug_enabled():
            out.console.write(msg)
    else:
        out.write(msg)
