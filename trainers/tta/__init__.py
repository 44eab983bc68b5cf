"""Test-time adaptation of CLIP for classification (TPT, RLCF), run by tta.py.

views.py / augmix.py   the 64 views of a test image (PIL, seeded per image)
data.py                the reference's set ids on our data sets, the views loader
policy.py              what is adapted: a CoOp prompt, or the whole image encoder
rewards.py             the frozen reward CLIP(s): CLIPScore with a per-view baseline
adapt.py               confident-view selection, TPT / RLCF losses, the episodic loop
results.py, cli.py, runner.py   result files, command line, main
"""
