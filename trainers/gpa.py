"""Gaussian prompt aggregation (PromptSRC's GPA): a Gaussian-weighted average of the prompts
over the epochs, loaded into the model after the last epoch.

The reference averages the whole state dict, frozen CLIP weights included, in fp16 (tiny
weights underflow, so the frozen weights come back only up to fp16 rounding). Only the
prompts change during training, so averaging them alone is the clean equivalent; the sum is
kept in fp32 and saved with the checkpoints, so a resumed run averages the same epochs.
Checkpoints load onto the CPU, so a restored sum is moved next to the prompts it aggregates
(a run saved on CPU and resumed on CUDA would otherwise add CUDA prompts to CPU sums).
"""
import math

import torch


def gaussian_epoch_weights(mean, std, epochs):
    """w_e = N(e; mean, std) for epochs e = 1 .. epochs, normalised to sum to 1."""
    if std <= 0:
        raise ValueError(f"TRAINER.PROMPTSRC.GPA_STD must be positive, got {std}")
    if epochs < 1:
        raise ValueError(f"GPA needs at least one epoch, got OPTIM.MAX_EPOCH {epochs}")
    density = [math.exp(-0.5 * ((e - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)) for e in range(1, epochs + 1)]
    total = sum(density)
    if total == 0:
        raise ValueError(
            f"GPA weights N(e; {mean}, {std}) underflow to 0 for every epoch 1..{epochs}: "
            "put TRAINER.PROMPTSRC.GPA_MEAN within the epochs"
        )
    return [d / total for d in density]


class PromptAverager:
    """Accumulates sum_e w_e * prompts_e over the epochs; ``average()`` is the GPA model's prompts."""

    def __init__(self, weights):
        self.weights = list(weights)
        self.total = {}  # name -> fp32 tensor
        self.epochs = []  # 0-based epochs added so far

    def add(self, epoch, named_tensors):
        """Add the prompts at the end of ``epoch`` (0-based), weighted by w_{epoch+1}."""
        if epoch in self.epochs:
            raise ValueError(f"GPA already holds epoch {epoch + 1}")
        weight = self.weights[epoch]
        for name, tensor in named_tensors.items():
            value = tensor.detach().float() * weight
            self.total[name] = value if name not in self.total else self.total[name] + value
        self.epochs.append(epoch)

    def average(self):
        return dict(self.total)

    def state_dict(self):
        """The running sum and the epochs in it (the weights come from the config)."""
        return {"total": self.total, "epochs": self.epochs}

    def load_state_dict(self, state, named_tensors):
        """Restore a saved running sum; each sum goes, in fp32, to the device of its prompt in
        ``named_tensors`` (the model's current prompts), wherever the checkpoint was loaded."""
        unknown = sorted(set(state["total"]) - set(named_tensors))
        if unknown:
            raise KeyError(
                f"The checkpoint's GPA sum holds {unknown}, which this model has no prompt for: resume "
                "with the prompt design (TRAINER.PROMPTSRC.PROMPT_DEPTH_*, N_CTX_*) it was trained with"
            )
        self.total = {
            name: total.detach().to(device=named_tensors[name].device, dtype=torch.float32)
            for name, total in state["total"].items()
        }
        self.epochs = list(state["epochs"])
