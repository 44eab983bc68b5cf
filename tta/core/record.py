"""tta.py's ``run.json`` in ``--output``: what the run is made from and which test sets it finished.

A rerun of the same command keeps the finished sets (their results are in results.json) and runs
the others; a rerun with other arguments, weights or test images is refused, naming them::

    {
      "format": 1, "program": "tta.py", "status": "running",
      "config": {"method": "tpt", "lr": 0.005, ...},            # the arguments that determine results
      "weights": {"-a": {"file": "...", "sha256": "..."}, "--reward_arch": {...}, "--load": {...}},
      "sets": {"A": {"data": {"images": 7500, "sha256": "..."}, "top1": 62.1, "top5": 88.0}}
    }
"""
import os.path as osp

from engine.rerun import ManifestRecord, RunConflict
from engine.run_manifest import (
    FORMAT_VERSION,
    RUNNING,
    config_differences,
    content_differences,
    describe_differences,
    items_digest,
    read_manifest,
    weights_fingerprint,
)

# arguments that do not change a set's result: where things are, loader workers, logging, which
# sets run; the weights arguments are compared by the content of their files
NOT_RESULT_ARGS = frozenset((
    "output", "root", "data", "workers", "print_freq", "gpu", "test_sets", "tpt",
    "arch", "reward_arch", "reward_archs", "load",
))


def result_args(args, not_result=NOT_RESULT_ARGS):
    return {k: v for k, v in sorted(vars(args).items()) if k not in not_result}


class TTARecord(ManifestRecord):
    """The run.json of a tta.py output folder: refuses another run, keeps the finished sets.

    Another program (tta_ret.py) subclasses it with its name, its arguments that do not change
    results, and what a finished set records (``data``, ``finish_set``, ``finished``)."""

    PROGRAM = "tta.py"
    NOT_RESULT_ARGS = NOT_RESULT_ARGS

    def __init__(self, args, weights_files):
        self.folder = args.output
        self.root = args.root
        self.recorded = read_manifest(self.folder)
        self.manifest = {
            "format": FORMAT_VERSION,
            "program": self.PROGRAM,
            "status": RUNNING,
            "config": result_args(args, self.NOT_RESULT_ARGS),
            "weights": weights_fingerprint(weights_files),
            "sets": dict((self.recorded or {}).get("sets", {})),
        }

    def check(self):
        """Raise one RunConflict naming every argument and weights file that differ from the folder's run."""
        if self.recorded is None:
            if osp.isfile(osp.join(self.folder, "results.json")):
                raise RunConflict(
                    f'The output folder "{self.folder}" holds the results.json of a {self.PROGRAM} run without run.json (an '
                    "earlier version): what it was made from is unknown, so it is not continued or replaced. Use "
                    "another --output, or delete that results.json to run here."
                )
            return
        found = config_differences(self.recorded, self.manifest)
        found.update(content_differences({"weights": self.recorded.get("weights")}, {"weights": self.manifest["weights"]}))
        self._refuse(found)

    def check_sets(self, test_sets):
        """Raise one RunConflict naming the finished sets whose images differ now."""
        found = {}
        for test_set in test_sets:
            done = self.manifest["sets"].get(test_set.set_id)
            if done is not None and done["data"] != self.data(test_set):
                found[f"images of {test_set.set_id}"] = (f"{done['data']['images']} images", f"{len(test_set.items)}, other ones")
        self._refuse(found)

    def _refuse(self, found):
        if found:
            raise RunConflict(
                f'The output folder "{self.folder}" holds a {self.PROGRAM} run made from other inputs ({describe_differences(found)}). '
                "Continuing it would mix two runs in one table: use another --output (or remove "
                f"{osp.join(self.folder, 'run.json')} and results.json to start this one over)."
            )

    def data(self, test_set):
        return {"images": len(test_set.items), "sha256": items_digest(test_set.items, self.root)}

    def finished(self, set_id):
        """(top1, top5) of a set an earlier run of this command finished, or None."""
        done = self.manifest["sets"].get(set_id)
        return None if done is None else (done["top1"], done["top5"])

    def start(self):
        self._write()

    def finish_set(self, test_set, top1, top5):
        self.manifest["sets"][test_set.set_id] = {"data": self.data(test_set), "top1": top1, "top5": top5}
        self._write()
