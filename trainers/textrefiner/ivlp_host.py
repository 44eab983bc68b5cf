"""TextRefiner on IVLP (TRAINER.TF.HOST "IVLP"): the refined text replaces IVLP's text in the CE
logits, with the CoOp variant's semantic and regularisation losses (BALANCE, DISTILL).
Checkpoints: ``VLPromptLearner/`` (prompts and ``mid_image_trans``) and ``Memory/``.
"""
from ..ivlp import IVLP
from .mixin import TextRefinerMixin


class TextRefinerIVLP(TextRefinerMixin, IVLP):
    def losses(self, image, label):
        loss, parts, _, _ = self.refined_ce(image, label, self.model.text_features())
        return loss, parts
