"""Feature alignment (the reference's ``mid_image_trans``): a per-token 1x1-conv MLP with BN.

It maps the last block's tokens into the space the local cache and the local loss work in.
The CoOp host keeps the width (512 -> 512) and uses it in training only; a distillation host
such as PromptKD maps the student's 512-d tokens into the teacher's 768-d text space.
"""
from torch import nn


class FeatureAlignment(nn.Module):
    """Conv1x1 (bias) -> BatchNorm2d -> ReLU -> Conv1x1 (bias) over tokens viewed as [N, d, 1, 1].

    Every token is one BN sample, so the batch statistics cover all B*L tokens of a batch.
    The layers live in ``conv1`` at indices 0, 1, 3 (2 is the ReLU), the reference's parameter
    names, so its checkpoints load: conv1.0.{weight,bias}, conv1.1.{weight,bias,running_*},
    conv1.3.{weight,bias}.
    """

    def __init__(self, in_dim=512, out_dim=512):
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"FeatureAlignment {name} must be a positive integer, got {value!r}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_dim, out_dim, 1),
            nn.BatchNorm2d(out_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_dim, out_dim, 1),
        )

    def forward(self, tokens):
        # tokens: [..., in_dim] -> [..., out_dim]
        if tokens.shape[-1] != self.in_dim:
            raise ValueError(
                f"FeatureAlignment expects tokens whose last dimension is {self.in_dim}, got shape "
                f"{tuple(tokens.shape)}: build it with in_dim equal to the image encoder's output width"
            )
        lead = tokens.shape[:-1]
        # the input follows the first conv's precision (fp16 under the reference's fp16 setup)
        x = tokens.reshape(-1, self.in_dim, 1, 1).to(self.conv1[0].weight.dtype)  # [N, in_dim, 1, 1]
        return self.conv1(x).reshape(*lead, self.out_dim)
