"""The scikit-learn script a user would write: read the IDX files, fit, score.

    python bench/scripts/sklearn_script.py IDX_FOLDER|digits [--model logreg|logreg-1000|sgd]

Prints the fit time and test accuracy as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

from plain_data import load
from sklearn.linear_model import LogisticRegression, SGDClassifier

MODELS = {
    "logreg": lambda: LogisticRegression(),
    "logreg-1000": lambda: LogisticRegression(max_iter=1000),
    "sgd": lambda: SGDClassifier(loss="log_loss", random_state=0),
}

parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("--model", choices=list(MODELS), default="logreg")
args = parser.parse_args()

X_train, y_train, X_test, y_test, pixel_max = load(args.data)
X_train, X_test = X_train / pixel_max, X_test / pixel_max  # float64 in [0, 1]
clf = MODELS[args.model]()
tic = time.perf_counter()
clf.fit(X_train, y_train)
fit_s = time.perf_counter() - tic
print(json.dumps({"fit_s": fit_s, "test_acc": clf.score(X_test, y_test)}))
