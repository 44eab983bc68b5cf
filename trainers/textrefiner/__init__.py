"""TextRefiner (AAAI 2025) as a plug-in on a host prompt learner.

Parts: the feature alignment (trainers/shared/alignment.py), the local cache (cache.py), the
local features (local_features.py), the losses (losses.py), the per-step recipe
(refiner.py: TextRefinerHead) and the plug-in functions a host adapter calls (plugin.py).
Hosts compose: ``<host>_host.py`` holds ``class TextRefiner<Host>(<Host>)``, a subclass of the
host trainer only (no adapter builds on another adapter, no mixin), that reads top to bottom:
the host's loss composition, then the PromptTrainer hooks through which the plug-in attaches
(listed in plugin.py). The trainer "TextRefiner" (trainer.py) picks the adapter named by
TRAINER.TF.HOST from ``HOSTS``.
"""
