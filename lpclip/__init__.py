"""Linear-probe CLIP, the few-shot baseline of CoOp and TaskRes (CoOp's lpclip/)."""
