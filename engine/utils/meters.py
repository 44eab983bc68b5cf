"""Running averages used for the per-iteration training log line."""
from collections import defaultdict

import torch


class AverageMeter:
    """Keeps the last value and the (count-weighted) mean."""

    def __init__(self, ema=False, momentum=0.9):
        self.ema = ema
        self.momentum = momentum
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        if isinstance(val, torch.Tensor):
            val = val.item()
        self.val = val
        self.sum += val * n
        self.count += n
        if self.ema:
            self.avg = self.avg * self.momentum + self.val * (1 - self.momentum)
        else:
            self.avg = self.sum / self.count


class MetricMeter:
    """A group of AverageMeters keyed by loss/metric name, printed in first-seen order."""

    def __init__(self, delimiter=" "):
        self.meters = defaultdict(AverageMeter)
        self.delimiter = delimiter

    def update(self, input_dict):
        if input_dict is None:
            return
        if not isinstance(input_dict, dict):
            raise TypeError("Input to MetricMeter.update() must be a dictionary")
        for k, v in input_dict.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            self.meters[k].update(v)

    def __str__(self):
        return self.delimiter.join(f"{name} {m.val:.4f} ({m.avg:.4f})" for name, m in self.meters.items())
