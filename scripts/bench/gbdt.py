#!/usr/bin/env python3
"""Cyclone's gradient boosting against LightGBM and scikit-learn's HistGradientBoosting, on the same data and
split, with the same settings (rounds, learning rate, leaves, depth, leaf size, L2, early stopping off):
test RMSE and fit time. Two datasets: the demo's synthetic bike stream (train on January to June, test on
July to December, after both changes in the pattern), and a synthetic 1,000,000 × 20 regression made here.
Run by scripts/bench-gbdt, which builds cyclone in release mode; not part of the tests.

usage: gbdt.py CYCLONE WORKDIR STREAM_CSV
"""

import csv
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

cyclone, work, stream = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
THREADS = os.cpu_count() or 2
SETTINGS = dict(trees=300, learning_rate=0.1, num_leaves=31, max_depth=-1, min_data_in_leaf=20, lambda_l2=1.0)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def write(path, header, columns):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in zip(*columns):
            w.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])


def run_cyclone(train_csv, test_csv, target, categorical):
    model = work / "cyclone-model.json"
    args = [cyclone, "train", "--data", str(train_csv), "--target", target, "--family", "gbdt", "--holdout", "0",
            "--trees", str(SETTINGS["trees"]), "--learning-rate", str(SETTINGS["learning_rate"]),
            "--num-leaves", str(SETTINGS["num_leaves"]), "--max-depth", "0",
            "--min-data-in-leaf", str(SETTINGS["min_data_in_leaf"]), "--lambda", str(SETTINGS["lambda_l2"]),
            "--early-stopping", "0", "--out", str(model)]
    if categorical:
        args += ["--categorical", *categorical]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    fit = float(re.search(r"fit in ([0-9.]+) s", out).group(1))
    scored = subprocess.run([cyclone, "score", "--model", str(model), "--data", str(test_csv)], check=True,
                            capture_output=True, text=True).stdout
    return float(re.search(r"rmse ([0-9.e+-]+)", scored).group(1)), fit


def run_lightgbm(x, y, xt, yt, categorical):
    params = dict(objective="regression", learning_rate=SETTINGS["learning_rate"], num_leaves=SETTINGS["num_leaves"],
                  max_depth=SETTINGS["max_depth"], min_data_in_leaf=SETTINGS["min_data_in_leaf"],
                  lambda_l2=SETTINGS["lambda_l2"], max_bin=255, num_threads=THREADS, verbose=-1)
    start = time.perf_counter()
    data = lgb.Dataset(x, label=y, categorical_feature=categorical or "auto")
    booster = lgb.train(params, data, num_boost_round=SETTINGS["trees"])
    fit = time.perf_counter() - start
    return rmse(booster.predict(xt), yt), fit


def run_sklearn(x, y, xt, yt, categorical):
    model = HistGradientBoostingRegressor(
        max_iter=SETTINGS["trees"], learning_rate=SETTINGS["learning_rate"], max_leaf_nodes=SETTINGS["num_leaves"],
        min_samples_leaf=SETTINGS["min_data_in_leaf"], l2_regularization=SETTINGS["lambda_l2"], max_bins=255,
        early_stopping=False, categorical_features=categorical or None)
    start = time.perf_counter()
    model.fit(x, y)
    fit = time.perf_counter() - start
    return rmse(model.predict(xt), yt), fit


def table(name, rows, header):
    print(f"\n{name}")
    print(f"| model | test RMSE | fit time |")
    print(f"| --- | --- | --- |")
    for label, (error, fit) in rows:
        print(f"| {label} | {error:.4g} | {fit:.2f} s |")
    sys.stdout.flush()


# 1. The demo's stream: January–June to train, July–December to test.
with open(stream) as f:
    records = list(csv.DictReader(f))
categories = {c: sorted({r[c] for r in records}) for c in ["weekday", "season", "weather"]}
features = ["hour", "weekday", "workingday", "season", "weather", "temp", "humidity", "wind"]


def encode(r):
    return [float(r["hour"])] + [float(categories[c].index(r[c])) for c in ["weekday"]] + \
           [1.0 if r["workingday"] == "true" else 0.0] + \
           [float(categories[c].index(r[c])) for c in ["season", "weather"]] + \
           [float(r["temp"]), float(r["humidity"]), float(r["wind"])]


train = [r for r in records if r["time"] < "2025-07-01"]
test = [r for r in records if r["time"] >= "2025-07-01"]
x, y = np.array([encode(r) for r in train]), np.array([float(r["count"]) for r in train])
xt, yt = np.array([encode(r) for r in test]), np.array([float(r["count"]) for r in test])
for path, part in [(work / "stream-train.csv", train), (work / "stream-test.csv", test)]:
    write(path, features + ["count"], [[r[c] for r in part] for c in features + ["count"]])
cat = [1, 3, 4]
table(f"bike stream: {len(train)} rows to train (Jan–Jun), {len(test)} to test (Jul–Dec)", [
    ("Cyclone gbdt", run_cyclone(work / "stream-train.csv", work / "stream-test.csv", "count", ["weekday", "season", "weather"])),
    ("LightGBM 4.6", run_lightgbm(x, y, xt, yt, cat)),
    ("scikit-learn HistGradientBoosting", run_sklearn(x, y, xt, yt, cat)),
], features)

# 2. A synthetic 1,000,000 × 20 regression: smooth terms, thresholds and interactions, 5 % missing.
n, p = int(os.environ.get("ROWS", "1000000")), 20
rng = np.random.default_rng(7)
X = rng.normal(size=(n + 100_000, p))
Y = (np.sin(X[:, 0]) * 3 + np.where(X[:, 1] > 0.5, 2.0, -1.0) + X[:, 2] * X[:, 3] + 0.5 * X[:, 4] ** 2
     + X[:, 5:10].sum(axis=1) * 0.3 + rng.normal(scale=0.5, size=n + 100_000))
X[rng.random(X.shape) < 0.05] = np.nan
names = [f"x{j}" for j in range(p)]
write(work / "big-train.csv", names + ["y"], [X[:n, j].round(5).tolist() for j in range(p)] + [Y[:n].round(5).tolist()])
write(work / "big-test.csv", names + ["y"], [X[n:, j].round(5).tolist() for j in range(p)] + [Y[n:].round(5).tolist()])
Xr, Xtr = np.round(X[:n], 5), np.round(X[n:], 5)
table(f"synthetic regression: {n:,} × {p} to train, 100,000 to test", [
    ("Cyclone gbdt", run_cyclone(work / "big-train.csv", work / "big-test.csv", "y", [])),
    ("LightGBM 4.6", run_lightgbm(Xr, Y[:n].round(5), Xtr, Y[n:].round(5), [])),
    ("scikit-learn HistGradientBoosting", run_sklearn(Xr, Y[:n].round(5), Xtr, Y[n:].round(5), [])),
], names)
print(f"\n{THREADS} threads for LightGBM and scikit-learn; Cyclone's histograms use every core.")
