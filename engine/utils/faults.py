"""Clear errors for the faults a run meets: an unusable output folder, a full disk, a NaN loss, a
user's mistake (shown by the command-line programs as one message, without a traceback)."""
import errno
import math
import os
import os.path as osp
import sys

# set to 1 to see the traceback of a user error (and train.py's config dump on the console) as well
DEBUG_ENV = "TEXTREFINER_DEBUG"


def debug_enabled():
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


class UserError(ValueError):
    """A mistake in what the user gave (config, data, arguments, an output folder); the message
    names the thing and the fix."""


# what a command-line program reports as a user error: the project raises these with messages that
# name the thing and the fix (config, data, arguments, missing files); anything else is a bug and
# keeps its traceback
USER_ERROR_TYPES = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, FloatingPointError)


def error_message(error):
    """The text of an error (a KeyError's message without the quotes str() adds)."""
    if isinstance(error, KeyError) and len(error.args) == 1:
        return str(error.args[0])
    return str(error)


def run_command(main, argv=None):
    """Run a program's ``main(argv)``; returns the exit status.

    A user error prints "Error: <message>" on stderr, without a traceback (DEBUG_ENV=1 re-raises
    it); Ctrl-C exits with 130 (the program has said where it stopped).
    """
    try:
        main(argv)
    except KeyboardInterrupt:
        return 130
    except USER_ERROR_TYPES as e:
        if debug_enabled():
            raise
        print(f"Error: {error_message(e)}", file=sys.stderr)
        print(f"({DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
        return 1
    return 0


def check_output_dir(path):
    """Create ``path`` if needed and prove it is writable, before any work is done."""
    if not path:
        return
    probe = osp.join(path, f".write_test{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise PermissionError(
            f'The output folder "{path}" cannot be written ({e.strerror or e}). '
            "Choose another --output-dir, or make the folder writable for this user."
        ) from None


def save_failure_message(fpath, error, previous):
    """Why writing checkpoint ``fpath`` failed, and what is kept (``previous``: the file still named in ``checkpoint``)."""
    full = getattr(error, "errno", None) == errno.ENOSPC or "write failed" in str(error)
    cause = f"the disk is full ({error})" if full else f"{error}"
    kept = f'the previous checkpoint "{previous}" is kept and a rerun resumes from it' if previous else "no earlier checkpoint exists"
    return f'Could not write the checkpoint "{fpath}": {cause}; {kept}. Free some space (or pick another --output-dir) and rerun the same command.'


class NonFiniteLossError(FloatingPointError):
    """A NaN/inf loss, raised before the update; ``parts``: the step's loss values when known."""

    def __init__(self, message="Loss is infinite or NaN!", parts=None):
        super().__init__(message)
        self.parts = parts


def nonfinite_parts(loss_summary):
    """The entries of a forward_backward summary that are NaN or infinite."""
    return {k: v for k, v in loss_summary.items() if isinstance(v, float) and not math.isfinite(v)}


def nonfinite_loss_message(step, loss_summary, prec, optim_name):
    """The stop message for a NaN/inf loss: where, which parts, the precision and what to try."""
    parts = "unknown" if loss_summary is None else ", ".join(f"{k}={v}" for k, v in loss_summary.items())
    advice = [f"the run's precision is PREC {prec}."]
    if prec == "fp16":
        advice.append(
            "Pure fp16 overflows easily: try TRAINER.<NAME>.PREC amp (mixed precision with a loss scaler) or fp32."
        )
    if optim_name.lower() in ("adam", "adamw"):
        advice.append(
            f"OPTIM.NAME {optim_name} on fp16 weights divides by a tiny second moment: use PREC amp or fp32 "
            "with AdamW, or a smaller OPTIM.LR."
        )
    else:
        advice.append("Try a smaller OPTIM.LR (or PREC amp / fp32 if you train in fp16).")
    return (
        f"The loss is NaN or infinite at {step} (loss parts: {parts}); training stopped, "
        f"the weights were not updated with it and nothing after the last checkpoint is saved. Note: {' '.join(advice)}"
    )
