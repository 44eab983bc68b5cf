"""Logistic regression with CoOp's search for the inverse regularisation strength C on val.

A coarse grid (1e6 ... 1e-6), then ``num_step`` rounds of a bisection in log10(C) around the
best grid value: each round fits the two ends, keeps the better one (the left on a tie) and
halves the interval towards it. The classifier of the last round is the one tested.
"""
import math

import numpy as np
from sklearn.linear_model import LogisticRegression

C_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)


def fit(features, labels, c):
    return LogisticRegression(solver="lbfgs", max_iter=1000, C=c).fit(features, labels)


def accuracy(clf, features, labels):
    return float(np.mean(clf.predict(features) == labels))


def search_c(train, val, num_step=8, log=print):
    """(C, classifier, val accuracy) chosen on val; ``train`` and ``val`` are (features, labels)."""
    grid_acc = [accuracy(fit(*train, c), *val) for c in C_GRID]
    log(f"C grid {list(C_GRID)}: val accuracy {[round(100 * a, 2) for a in grid_acc]}")
    peak = C_GRID[int(np.argmax(grid_acc))]
    left, right = math.log10(peak) - 1, math.log10(peak) + 1
    best = (peak, fit(*train, peak), max(grid_acc))
    for step in range(num_step):
        c_left, c_right = 10**left, 10**right
        clf_left, clf_right = fit(*train, c_left), fit(*train, c_right)
        acc_left, acc_right = accuracy(clf_left, *val), accuracy(clf_right, *val)
        log(f"step {step + 1}/{num_step}: C {c_left:.4g} val {100 * acc_left:.2f}% | "
            f"C {c_right:.4g} val {100 * acc_right:.2f}%")
        middle = (left + right) / 2
        if acc_left < acc_right:
            best = (c_right, clf_right, acc_right)
            left = middle
        else:
            best = (c_left, clf_left, acc_left)
            right = middle
    return best
