"""Test-time adaptation of CLIP, run by tta.py.

core/             what a task shares: the weights a CLIP argument names and loading them through the
                  training CLIP loader (models.py), the frozen reward CLIP(s) with CLIPScore and the
                  mean-over-candidates baseline (rewards.py), run.json / results.json and resume (record.py)
classification/   TPT and RLCF on classification: the 64 views (views.py, augmix.py), the reference's
                  set ids on our data sets (data.py), what is adapted (policy.py), the losses and the
                  episodic loop (adapt.py), result files, command line and main (results.py, cli.py, runner.py)
"""
