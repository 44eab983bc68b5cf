"""RLCF image captioning: a ClipCap / CapDec captioner (CLIP embedding -> mapper prefix -> frozen OPT)
adapted per test image with a CLIP reward.

mapper.py   the prefix mapper (the reference's parameter names)
model.py    the captioner on a frozen OPT, its token CE, loading OPT and weights files
"""
