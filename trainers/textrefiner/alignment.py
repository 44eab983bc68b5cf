"""Feature alignment (the reference's mid_image_trans): a per-token 1x1-conv MLP with BN."""
from torch import nn


class FeatureAlignment(nn.Module):
    """Conv1x1 -> BatchNorm -> ReLU -> Conv1x1 over tokens viewed as [N, d, 1, 1].

    BN statistics therefore cover every token of the batch (B*L of them). Parameter names
    (conv1.0, conv1.1, conv1.3) are the reference's so its checkpoints load.
    """

    def __init__(self, in_dim=512, out_dim=512):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_dim, out_dim, 1),
            nn.BatchNorm2d(out_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_dim, out_dim, 1),
        )

    def forward(self, x):
        # x: [..., in_dim] -> [..., out_dim]
        lead = x.shape[:-1]
        out = self.conv1(x.reshape(-1, x.shape[-1], 1, 1))
        return out.reshape(*lead, out.shape[1])
