"""TextRefiner on CoOp (TRAINER.TF.HOST "CoOp"): the refiner around CoOp's text features.

Per step (the reference's order): image encoder with local tokens -> CoOp's text t -> alignment
of the last block's tokens -> local features -> cache read and aggregation t~ -> cache write ->
CE(image, t~) + L_sem / BALANCE + DISTILL * L_reg. At evaluation t~ is computed once.
Checkpoints as the reference: ``prompt_learner/`` (``prompt_learner.*`` and ``mid_image_trans.*``;
the frozen CLIP is not stored) and ``Memory/``. Like the reference, the prompt learner reads
TRAINER.COOP (TRAINER.TF.N_CTX etc. are unused).
"""
from ..coop import CoOp
from ..prompt_trainer import CheckpointKeys
from .mixin import TextRefinerMixin


class TextRefinerCoOp(TextRefinerMixin, CoOp):
    def registered_module(self):
        return self.model  # prompt_learner/ holds the prompt learner and the alignment

    def losses(self, image, label):
        loss, parts, _, _ = self.refined_ce(image, label, self.model.text_features())
        return loss, parts

    def checkpoint_keys(self, name):
        if name == "Memory":
            return super().checkpoint_keys(name)
        # reference checkpoints hold the whole CustomCLIP: keep the refiner's own keys
        rebuilt = ("prompt_learner.token_prefix", "prompt_learner.token_suffix", "prompt_learner.tokenized_prompts")
        return CheckpointKeys(("prompt_learner.", "mid_image_trans."), rebuilt=rebuilt)
