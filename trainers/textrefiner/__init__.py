"""TextRefiner (AAAI 2025): the plug-in parts, the CoOp and PromptKD hosts, and the trainer
(registered as "TextRefiner" by ``trainers.textrefiner.trainer``)."""
