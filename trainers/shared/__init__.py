"""Parts that two methods use, below both of them: PromptKD and the TextRefiner plug-in share the
feature alignment and the distillation loss; zero-shot CLIP, KgCoOp, PromptSRC and TaskRes share the
template tables and the text encoding of class names through templates (templates.py). A method
module imports these, never another method's package."""
