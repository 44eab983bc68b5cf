"""TextRefiner on MaPLe (TRAINER.TF.HOST "MaPLe"): the refined text replaces MaPLe's text in the
CE logits, with the CoOp variant's semantic and regularisation losses (BALANCE, DISTILL). The
local tokens come from the image encoder run with this step's coupled vision prompts.
Checkpoints: ``MultiModalPromptLearner/`` (the prompt learner and ``mid_image_trans``) and ``Memory/``.
"""
from ..maple import MaPLe
from .mixin import TextRefinerMixin


class TextRefinerMaPLe(TextRefinerMixin, MaPLe):
    def losses(self, image, label):
        loss, parts, _, _ = self.refined_ce(image, label, self.model.text_features())
        return loss, parts
