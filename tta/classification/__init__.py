"""TPT and RLCF test-time adaptation for classification (tta.py --method ...).

views.py / augmix.py   the 64 views of a test image (PIL, seeded per image)
data.py                the reference's set ids on our data sets, the views loader
policy.py              what is adapted: a CoOp prompt, or the whole image encoder
adapt.py               confident-view selection, TPT / RLCF losses, the episodic loop
results.py, cli.py, runner.py   result files, command line, main
"""
