#!/usr/bin/env python3
"""`cyclone estimate` against NannyML's CBPE on the same files: wall clock from files to estimates, and how
far apart the estimates are. Run by scripts/bench-estimate (which builds cyclone in release mode and uses the
environment of scripts/bench-drift); not part of the tests.

    estimate.py generate BINARY FOLDER CASE...   data, a LightGBM model and its Cyclone import for each CASE
    estimate.py cyclone BINARY FOLDER CASE       runs `cyclone estimate --json`, writes FOLDER/CASE-cyclone.json
    estimate.py nannyml FOLDER CASE              runs CBPE, writes FOLDER/CASE-nannyml.json
    estimate.py report FOLDER CASE...            prints the comparison and one closing line

A CASE is the number of rows on each side (reference and analysis); both are cut into ten chunks. The model
is a LightGBM binary classifier trained here on 5,000 other rows and imported into Cyclone
(`cyclone import --lightgbm`), so both tools see the same probabilities: NannyML gets them as columns of its
files (computed by LightGBM, outside its clock), Cyclone scores the rows itself, inside its clock. The
analysis drifts: its x1 moves by one standard deviation in the second half, which moves the estimates.
NannyML's clock starts after its imports and stops once the estimates are in a data frame (`read_csv` of
both files, fit, estimate); Cyclone's is the process's wall clock.
"""

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

from drift import load, save, timed  # the drift benchmark's timing (REPEAT) and result files

warnings.filterwarnings("ignore")

FEATURES = ["x1", "x2", "x3", "x4", "segment"]
METRICS = ["roc_auc", "f1", "precision", "recall", "specificity", "accuracy"]
SEED = 20261206


def files(folder, case):
    folder = Path(folder)
    return {name: folder / f"{case}-{name}" for name in
            ("reference.csv", "analysis.csv", "reference-scored.csv", "analysis-scored.csv")}


def rows(rng, n, shift):
    import numpy as np
    import pandas as pd
    x1 = rng.normal(0, 1, n)
    if shift:
        x1[n // 2:] += 1.0
    x2, x3 = rng.normal(0, 1, n), rng.uniform(-2, 2, n)
    x4 = 0.5 * x2 + rng.normal(0, 1, n)
    segment = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    logit = 1.2 * x1 - 0.8 * x2 + 0.5 * x3 * x3 - 1 + np.where(segment == "b", 0.7, 0.0)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": x4, "segment": segment, "y": y})


def generate(binary, folder, cases):
    import lightgbm
    import numpy as np
    rng = np.random.default_rng(SEED)
    train = rows(rng, 5_000, False)
    train["segment"] = train["segment"].astype("category")
    model = lightgbm.LGBMClassifier(n_estimators=50, num_leaves=15, verbose=-1, deterministic=True, n_jobs=1)
    model.fit(train[FEATURES], train["y"])
    folder = Path(folder)
    model.booster_.save_model(folder / "model.txt")
    train.to_csv(folder / "train.csv", index=False, float_format="%.17g")
    subprocess.run([binary, "import", "--lightgbm", str(folder / "model.txt"), "--data", str(folder / "train.csv"),
                    "--target", "y", "--out", str(folder / "model.json"), "--name", "bench"],
                   check=True, capture_output=True)
    for case in cases:
        n = int(case)
        paths = files(folder, case)
        for name, shift in (("reference", False), ("analysis", True)):
            frame = rows(rng, n, shift)
            frame.to_csv(paths[f"{name}.csv"], index=False, float_format="%.17g")
            typed = frame.copy()
            typed["segment"] = typed["segment"].astype(train["segment"].dtype)
            typed["y_pred_proba"] = model.predict_proba(typed[FEATURES])[:, 1]
            typed["y_pred"] = (typed["y_pred_proba"] >= 0.5).astype(int)
            typed.to_csv(paths[f"{name}-scored.csv"], index=False, float_format="%.17g")


def run_cyclone(binary, folder, case):
    paths = files(folder, case)
    args = [binary, "estimate", "--model", str(Path(folder) / "model.json"), "--reference", str(paths["reference.csv"]),
            "--current", str(paths["analysis.csv"]), "--target", "y", "--chunk-size", str(int(case) // 10), "--json"]
    seconds, out = timed(lambda: subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    result = json.loads(out)
    chunks = [{metric: chunk["estimates"][metric]["value"] for metric in METRICS if metric in chunk["estimates"]}
              for chunk in result["chunks"]]
    save(folder, case, "cyclone", {"seconds": seconds, "chunks": chunks, "detail": result["detail"]})


def run_nannyml(folder, case):
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    start = time.perf_counter()
    import pandas as pd
    import nannyml as nml
    imports = time.perf_counter() - start
    paths = files(folder, case)

    def run():
        reference = pd.read_csv(paths["reference-scored.csv"])
        analysis = pd.read_csv(paths["analysis-scored.csv"])
        estimator = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y", metrics=METRICS,
                             chunk_size=int(case) // 10, problem_type="classification_binary")
        estimator.fit(reference)
        return estimator.estimate(analysis).filter(period="analysis").to_df()

    seconds, frame = timed(run)
    chunks = [{metric: float(frame[(metric, "value")].iloc[k]) for metric in METRICS} for k in range(len(frame))]
    save(folder, case, "nannyml", {"seconds": seconds, "imports": imports, "version": nml.__version__, "chunks": chunks})


def report(folder, cases):
    lines = ["| rows a side | chunks | Cyclone | NannyML | × NannyML | largest difference of an estimate |",
             "|---:|---:|---:|---:|---:|---:|"]
    worst_speed, worst_diff = None, 0.0
    for case in cases:
        cy, nm = load(folder, case, "cyclone"), load(folder, case, "nannyml")
        diff = max(abs(a[m] - b[m]) for a, b in zip(cy["chunks"], nm["chunks"]) for m in METRICS)
        assert len(cy["chunks"]) == len(nm["chunks"]), "the tools cut the analysis differently"
        speed = nm["seconds"] / cy["seconds"]
        print(f"{int(case):,} rows a side: cyclone {cy['seconds']:.3f} s ({cy['detail']}); nannyml {nm['version']} "
              f"{nm['seconds']:.2f} s (+{nm['imports']:.1f} s imports); largest difference {diff:.1e}")
        lines.append(f"| {int(case):,} | {len(cy['chunks'])} | {cy['seconds']:.3f} s | {nm['seconds']:.2f} s | "
                     f"{speed:.1f}× | {diff:.1e} |")
        worst_speed = speed if worst_speed is None else min(worst_speed, speed)
        worst_diff = max(worst_diff, diff)
    print("\n" + "\n".join(lines) + "\n")
    print(f"estimate: Cyclone at least {worst_speed:.1f}× NannyML's CBPE from file to estimates; estimates within "
          f"{worst_diff:.1e} of NannyML's over {len(cases)} sizes (target 20×: {'met' if worst_speed >= 20 else 'missed'})")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "generate":
        generate(args[0], args[1], args[2:])
    elif command == "cyclone":
        run_cyclone(*args)
    elif command == "nannyml":
        run_nannyml(*args)
    elif command == "report":
        report(args[0], args[1:])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
