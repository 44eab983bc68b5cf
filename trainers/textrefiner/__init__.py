"""TextRefiner (AAAI 2025): the plug-in parts and the trainer hosting them on CoOp."""
from . import trainer  # noqa: F401  (registers "TextRefiner")
