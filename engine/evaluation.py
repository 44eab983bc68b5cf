"""Classification evaluator printing the exact result block parse_test_res.py reads."""
import os.path as osp
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from .distributed import is_main_process
from .utils import Registry, check_availability

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    avai = EVALUATOR_REGISTRY.registered_names()
    check_availability(cfg.TEST.EVALUATOR, avai)
    if cfg.VERBOSE:
        print(f"Loading evaluator: {cfg.TEST.EVALUATOR}")
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)


class EvaluatorBase:
    def __init__(self, cfg):
        self.cfg = cfg

    def reset(self):
        raise NotImplementedError

    def process(self, mo, gt):
        raise NotImplementedError

    def evaluate(self):
        raise NotImplementedError


def macro_f1_score(y_true, y_pred):
    """Macro-F1 over the labels present in y_true (sklearn's average="macro", zero_division=0).

    Written here so that importing the engine does not import scikit-learn (seconds per process).
    """
    labels = np.unique(y_true)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = np.array([np.sum((y_true == c) & (y_pred == c)) for c in labels], dtype=np.float64)
    predicted = np.array([np.sum(y_pred == c) for c in labels], dtype=np.float64)
    actual = np.array([np.sum(y_true == c) for c in labels], dtype=np.float64)
    denominator = predicted + actual  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1.mean())


def normalized_confusion_matrix(y_true, y_pred):
    """Rows divided by their totals over the sorted labels seen (sklearn's normalize="true")."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred]))
    counts = np.zeros((len(labels), len(labels)))  # rows: true label, columns: predicted
    np.add.at(counts, (np.searchsorted(labels, y_true), np.searchsorted(labels, y_pred)), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Accuracy, error and macro-F1 (over the labels present), optionally per class."""

    def __init__(self, cfg, lab2cname=None, **kwargs):
        super().__init__(cfg)
        self._lab2cname = lab2cname
        self._per_class_res = None
        if cfg.TEST.PER_CLASS_RESULT and lab2cname is None:
            raise ValueError("TEST.PER_CLASS_RESULT needs lab2cname (class names)")
        self.reset()

    def reset(self):
        self._correct = 0
        self._total = 0
        self._y_true = []
        self._y_pred = []
        if self.cfg.TEST.PER_CLASS_RESULT:
            self._per_class_res = defaultdict(list)

    def process(self, mo, gt):
        # mo: [B, C] logits or probabilities; gt: [B] labels
        pred = mo.max(1)[1]
        matches = pred.eq(gt).int()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.cpu().tolist())
        self._y_pred.extend(pred.cpu().tolist())
        if self._per_class_res is not None:
            for label, hit in zip(gt.tolist(), matches.tolist()):
                self._per_class_res[label].append(hit)

    def state(self):
        """What this process has seen: (true labels, predicted labels)."""
        return self._y_true, self._y_pred

    def merge(self, states):
        """Replace what was seen by the union of ``states`` (every rank's ``state()``): the
        evaluation of a split sharded over the ranks of a torchrun, each image counted once."""
        self.reset()
        for y_true, y_pred in states:
            self._y_true.extend(y_true)
            self._y_pred.extend(y_pred)
            for label, pred in zip(y_true, y_pred):
                hit = int(label == pred)
                self._correct += hit
                if self._per_class_res is not None:
                    self._per_class_res[label].append(hit)
        self._total = len(self._y_true)

    def evaluate(self):
        results = OrderedDict()
        acc = 100.0 * self._correct / self._total
        err = 100.0 - acc
        macro_f1 = 100.0 * macro_f1_score(self._y_true, self._y_pred)
        results["accuracy"] = acc
        results["error_rate"] = err
        results["macro_f1"] = macro_f1
        print(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {err:.1f}%\n"
            f"* macro_f1: {macro_f1:.1f}%"
        )

        if self._per_class_res is not None:
            print("=> per-class result")
            accs = []
            for label in sorted(self._per_class_res):
                hits = self._per_class_res[label]
                correct, total = sum(hits), len(hits)
                class_acc = 100.0 * correct / total
                accs.append(class_acc)
                print(
                    f"* class: {label} ({self._lab2cname[label]})\t"
                    f"total: {total:,}\tcorrect: {correct:,}\tacc: {class_acc:.1f}%"
                )
            mean_acc = float(np.mean(accs))
            print(f"* average: {mean_acc:.1f}%")
            results["perclass_accuracy"] = mean_acc

        if self.cfg.TEST.COMPUTE_CMAT and is_main_process():
            cmat = normalized_confusion_matrix(self._y_true, self._y_pred)
            save_path = osp.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            torch.save(cmat, save_path)
            print(f"Confusion matrix is saved to {save_path}")
        return results
