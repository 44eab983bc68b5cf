"""tta_ret.py's run.json: the run record of tta/core/record.py, one finished "set" per run
(``<dataset>/<retrieval_task>``, or ``<dataset>/zero_shot``) holding its metrics."""
from tta.core.record import TTARecord

NOT_RESULT_ARGS = frozenset((
    "output", "root", "ann_file", "image_root", "workers", "print_freq", "gpu", "text_bs", "feature_cache",
    "arch", "reward_arch", "reward_archs",
))


class RetrievalRecord(TTARecord):
    PROGRAM = "tta_ret.py"
    NOT_RESULT_ARGS = NOT_RESULT_ARGS

    def __init__(self, args, weights_files, digests):
        super().__init__(args, weights_files)
        self.digests = digests

    def data(self, test_set):
        return {"images": len(test_set.images), "texts": len(test_set.texts), "sha256": dict(self.digests)}

    def check_sets(self, runs):
        """``runs``: [(set id, RetrievalSet)]; one RunConflict naming those finished on other data."""
        found = {}
        for set_id, data in runs:
            done = self.manifest["sets"].get(set_id)
            if done is not None and done["data"] != self.data(data):
                found[f"data of {set_id}"] = (f"{done['data']['images']} images, {done['data']['texts']} texts",
                                             f"{len(data.images)}, {len(data.texts)}, other content")
        self._refuse(found)

    def finished(self, set_id):
        """The metrics of a run an earlier run of this command finished, or None."""
        done = self.manifest["sets"].get(set_id)
        return None if done is None else done["metrics"]

    def finish_set(self, set_id, data, metrics):
        self.manifest["sets"][set_id] = {"data": self.data(data), "metrics": metrics}
        self._write()
