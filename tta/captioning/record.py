"""run.json of a captioning output folder: what the run was made from, and whether it finished.

A finished run with the same arguments, weights and data is not run again (its results stand); a
run made from other inputs is refused, naming them; an unfinished one starts over (``caption.py
tta``) or resumes from its newest checkpoint (``caption.py train``).
"""
import os.path as osp

from engine.rerun import ManifestRecord, RunConflict
from engine.run_manifest import (
    FINISHED,
    FORMAT_VERSION,
    RUNNING,
    config_differences,
    content_differences,
    describe_differences,
    read_manifest,
    weights_fingerprint,
)


class CaptionRecord(ManifestRecord):
    def __init__(self, folder, program, config, weights_files, data, results_name="results.json"):
        self.folder = folder
        self.results_name = results_name  # the file a finished run leaves
        self.manifest = {"format": FORMAT_VERSION, "program": program, "status": RUNNING, "config": config,
                         "weights": weights_fingerprint(weights_files), "data": data}

    def finished_before(self):
        """True when the folder holds this very run, finished; raise RunConflict for another run."""
        recorded = read_manifest(self.folder)
        if recorded is None:
            if osp.isfile(osp.join(self.folder, self.results_name)):
                raise RunConflict(f'The output folder "{self.folder}" holds a {self.results_name} without run.json: use '
                                  f"another output folder, or delete that {self.results_name} to run here.")
            return False
        found = config_differences(recorded, self.manifest)
        found.update(content_differences(recorded, self.manifest))
        if recorded.get("program") != self.manifest["program"]:
            found["program"] = (recorded.get("program"), self.manifest["program"])
        if found:
            raise RunConflict(
                f'The output folder "{self.folder}" holds a run made from other inputs ({describe_differences(found)}): use '
                f"another output folder (or remove {osp.join(self.folder, 'run.json')} to start this one over)."
            )
        return recorded.get("status") == FINISHED

    def start(self):
        self._write()
