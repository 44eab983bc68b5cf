"""BatchNorm over the global batch: what one process computes on B images, N processes compute
on B/N images each.

torch's SyncBatchNorm runs on GPUs only; this one uses the process group's all_reduce (gloo or
nccl) and autograd through it (gather.sum_over_ranks), so it runs on CPU too and is what the
CPU tests check. The statistics are the two-pass mean and biased variance of the whole batch, in
at least fp32; running statistics follow BatchNorm's rule with the unbiased variance of the
whole batch. Outside training, or without a process group, it is torch's BatchNorm.
"""
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .context import is_distributed
from .gather import sum_over_ranks


class GlobalBatchNorm(_BatchNorm):
    """A BatchNorm layer (1d, 2d or 3d input) whose training statistics span every rank's batch.

    The state dict is the plain BatchNorm's (weight, bias, running_mean, running_var,
    num_batches_tracked), so checkpoints are interchangeable with single-process runs.
    """

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input):
        if not (self.training and is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        shape = [1, channels] + [1] * (input.dim() - 2)
        work = torch.promote_types(input.dtype, torch.float32)
        x = input.to(work)
        count = torch.tensor([x.numel() // channels], dtype=work, device=x.device)
        dist.all_reduce(count)
        mean = sum_over_ranks(x.sum(dims)) / count  # [C]
        centered = x - mean.view(shape)
        var = sum_over_ranks(centered.pow(2).sum(dims)) / count  # [C], biased
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.to(work).view(shape) + self.bias.to(work).view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count)
        return out.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean, var, count):
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * count / (count - 1).clamp(min=1)
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def convert_batchnorm(module):
    """``module`` with every BatchNorm layer replaced by a GlobalBatchNorm that shares its
    parameters and buffers (optimizers built before keep updating the same tensors)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
        converted = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        converted = convert_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
