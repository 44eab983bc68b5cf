"""TextRefiner on PromptSRC (TRAINER.TF.HOST "PromptSRC"): the refined text replaces PromptSRC's
text in the CE logits (and in the logits its KL constraint compares with the frozen CLIP's); the
CoOp variant's semantic and regularisation losses are added, and PromptSRC's L1 constraints on
the (unrefined) text and the image features stay. GPA averages the host's model (prompts and
alignment); the cache and its extractor are the last epoch's.
Checkpoints: ``VLPromptLearner/`` (prompts, ``mid_image_trans``, GPA sum) and ``Memory/``.
"""
from ..promptsrc import PromptSRC
from .mixin import TextRefinerMixin


class TextRefinerPromptSRC(TextRefinerMixin, PromptSRC):
    def losses(self, image, label):
        text = self.model.text_features()
        loss, parts, logits, image_features = self.refined_ce(image, label, text)
        for term in self.self_regularisation(image, text, image_features, logits):
            loss = loss + term
        return loss, parts
