"""TextRefiner on KgCoOp (TRAINER.TF.HOST "KgCoOp"): CoOp's adapter plus KgCoOp's own regulariser.

Loss: CE(image, t~) + L_sem / BALANCE + DISTILL * L_reg (the CoOp variant) + W * (1 - mean cos(t,
w)), where t is the prompted (unrefined) text and w the hand-crafted CLIP text (TRAINER.COOP.W).
Evaluation and checkpoints as on CoOp: t~ once per evaluation; ``prompt_learner/`` and ``Memory/``.
"""
from ..kgcoop import KgCoOp, knowledge_guided_loss
from .coop_host import TextRefinerCoOp


class TextRefinerKgCoOp(TextRefinerCoOp, KgCoOp):
    def hyper_parameters(self):
        return {**super().hyper_parameters(), "w": self.prompt_cfg.W}

    def losses(self, image, label):
        text = self.model.text_features()  # [C, D], normalised
        loss, parts, _, _ = self.refined_ce(image, label, text)
        knowledge = self.prompt_cfg.W * knowledge_guided_loss(text, self.clip_text)
        return loss + knowledge, {**parts, "kg": knowledge.detach()}
