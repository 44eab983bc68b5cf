"""TextRefiner (AAAI 2025): the plug-in parts, the mixin, one adapter per host (CoOp, PromptKD,
IVLP, MaPLe, PromptSRC) and the trainer (registered as "TextRefiner" by ``trainers.textrefiner.trainer``)."""
