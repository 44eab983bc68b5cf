"""Training an enhanced base for TaskRes*: fine-tune only CLIP's text projection on the few-shot data.

The class weights are the base classifier of TaskRes with a trainable projection:
W = mean_t(h_ct) @ P, h [C, T, width] the frozen EOT features of the templates (computed once),
P [width, D] initialised from CLIP's text_projection. The registered model is that projection
as an nn.Linear(width, D) named "text_projection", so its checkpoint
``text_projection/model.pth.tar-<epoch>`` holds {"state_dict": {"weight": [D, width]}}: the
file format of the released enhanced bases, read by TRAINER.TaskRes.ENHANCED_BASE.
"""
import torch.nn as nn

from engine import TRAINER_REGISTRY
from engine.checkpoint import CheckpointKeys

from .taskres import TaskRes


class ProjectedBase(nn.Module):
    """Class weights [C, D] = template mean of the EOT features [C, T, width] through a trainable projection."""

    def __init__(self, eot, projection):
        super().__init__()
        width, embed_dim = projection.shape
        self.register_buffer("eot_features", eot)  # [C, T, width]
        self.text_projection = nn.Linear(width, embed_dim, bias=False)  # weight [D, width] = projection^T
        self.text_projection.weight.data.copy_(projection.detach().t())

    def forward(self):
        return self.text_projection(self.eot_features).mean(dim=1)  # [C, D]


@TRAINER_REGISTRY.register()
class TaskResEnhancedBase(TaskRes):
    """Writes an enhanced base: same data, templates, loss and schedule as TaskRes; only P trains."""

    def build_head(self, clip_model, eot):
        print(">> Training an enhanced base: the text projection is the only trainable part")
        return ProjectedBase(eot, clip_model.text_projection)

    def is_trainable(self, name):
        return name == "prompt_learner.text_projection.weight"

    def saved_models(self):
        return {"text_projection": (self.model.prompt_learner.text_projection, CheckpointKeys(fit=self.fit_class_rows))}
