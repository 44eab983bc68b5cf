"""Gaussian prompt aggregation (PromptSRC's GPA): a Gaussian-weighted average of the prompts
over the epochs, loaded into the model after the last epoch.

The reference averages the whole state dict, frozen CLIP weights included, in fp16 (tiny
weights underflow, so the frozen weights come back only up to fp16 rounding). Only the
prompts change during training, so averaging them alone is the clean equivalent; the sum is
kept in fp32 and saved with the checkpoints, so a resumed run averages the same epochs.
"""
import math


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

    def load_state_dict(self, state):
        self.total, self.epochs = dict(state["total"]), list(state["epochs"])
