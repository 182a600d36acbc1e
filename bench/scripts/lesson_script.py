"""The lessons' training loop as a script: per-sample Dataset, DataLoader, nn.Linear, SGD.

    python bench/scripts/lesson_script.py IDX_FOLDER|digits [--epochs 15]

Prints the fit time and test accuracy as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch
import torch.nn.functional as F
from plain_data import load
from torch import nn


class SampleDataset(torch.utils.data.Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


parser = argparse.ArgumentParser()
parser.add_argument("data")
parser.add_argument("--epochs", type=int, default=15)
args = parser.parse_args()

X_train, y_train, X_test, y_test, pixel_max = load(args.data)
X_train = torch.tensor(X_train, dtype=torch.float32) / pixel_max
X_test = torch.tensor(X_test, dtype=torch.float32) / pixel_max
y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

torch.manual_seed(777)
random.seed(777)
model = nn.Linear(X_train.shape[1], int(y_train.max()) + 1)
loader = torch.utils.data.DataLoader(SampleDataset(X_train, y_train), batch_size=100, shuffle=True, drop_last=True)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
tic = time.perf_counter()
for epoch in range(args.epochs):
    avg_cost = 0.0
    for xb, yb in loader:
        cost = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
        avg_cost += cost.item() / len(loader)
    print(f"Epoch: {epoch + 1:04d} cost = {avg_cost:.9f}")
fit_s = time.perf_counter() - tic
with torch.no_grad():
    accuracy = (model(X_test).argmax(1) == y_test).float().mean().item()
print(json.dumps({"fit_s": fit_s, "test_acc": accuracy}))
