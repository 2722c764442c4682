#!/usr/bin/env python3
"""`cyclone drift` against Evidently's DataDriftPreset and NannyML's UnivariateDriftCalculator on the same two
CSV files: wall clock from file to verdict, and whether the per-column verdicts and statistics agree.
Run by scripts/bench-drift, which builds cyclone in release mode and makes the Python environment
(scripts/bench/drift-requirements.txt); not part of the tests.

    drift.py generate FOLDER CASE...          writes FOLDER/CASE-reference.csv and FOLDER/CASE-current.csv
    drift.py cyclone BINARY FOLDER CASE       runs `cyclone drift --json`, writes FOLDER/CASE-cyclone.json
    drift.py evidently FOLDER CASE            runs DataDriftPreset, writes FOLDER/CASE-evidently.json
    drift.py nannyml FOLDER CASE              runs UnivariateDriftCalculator, writes FOLDER/CASE-nannyml.json
    drift.py report FOLDER CASE...            prints the comparison, the summary table and the closing line

A CASE is the number of rows on each side (800, 1050, 10000, ...). Every tool is timed REPEAT times (default
1) in its own process and the median reported. The Python tools' clocks start after their imports (reported
apart) and stop once the per-column results are in Python objects: `pandas.read_csv` of both files, the
report or fit + calculate, reading the results out. Cyclone's clock is the process's wall clock, exec to exit.

The data (seeded): ten columns, some with missing cells. Five drift by construction (age, income, latency:
shifted by 0.4+ reference standard deviations; region: other proportions and 1 % of an unseen category;
promo: 30 % → 50 % true), so the dataset verdict sits exactly at the 50 % line; score moves by 0.07 standard
deviations (below the 0.1 threshold); device's proportions move a little; tenure, balance and plan stay.
The numeric columns are continuous (Evidently reads a numeric column with at most 5 distinct values as
categorical; Cyclone does not). balance has 10 % missing cells: at 1,050 rows a side its reference has about
945 values, which makes Evidently choose the KS test (it counts the column's non-missing values) where
Cyclone chooses Wasserstein (it counts the file's rows).
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # NannyML's "too few chunks", SciPy's division by a zero expected count

NUMERIC = ["age", "income", "tenure", "score", "balance", "latency"]
CATEGORICAL = ["region", "plan", "device"]
BOOLEAN = ["promo"]
COLUMNS = NUMERIC + CATEGORICAL + BOOLEAN
REPEAT = int(os.environ.get("REPEAT", "1"))
SEED = 20261206

# Evidently's stattest names (StatTest.name) → the names `cyclone drift --json` gives the same test.
EVIDENTLY_TESTS = {"ks": "ks", "chisquare": "chi_squared", "z": "z_test", "wasserstein": "wasserstein_normed",
                   "jensenshannon": "jensen_shannon"}
# Tests whose Evidently score is the p-value (the rest give a distance).
P_VALUE_TESTS = {"ks", "chi_squared", "z_test"}


def paths(folder, case):
    folder = Path(folder)
    return folder / f"{case}-reference.csv", folder / f"{case}-current.csv"


# ----------------------------------------------------------------------------------------------- data


def generate(folder, cases):
    import numpy as np
    import pandas as pd

    def table(rng, n, current):
        def missing(values, share):
            values = np.asarray(values, dtype=float if np.issubdtype(np.asarray(values).dtype, np.number) else object)
            values[rng.random(n) < share] = np.nan if values.dtype == float else None
            return values

        region_names = ["north", "south", "east", "west", "central"]
        region_p = [0.15, 0.2, 0.2, 0.2, 0.24] if current else [0.3, 0.25, 0.2, 0.15, 0.1]
        region = rng.choice(region_names, size=n, p=np.array(region_p) / sum(region_p)).astype(object)
        if current:
            region[rng.random(n) < 0.01] = "islands"  # a category the reference never saw
        device_names = ["android", "ios", "web", "tablet", "tv", "watch", "kiosk", "other"]
        device_p = [0.3, 0.25, 0.2, 0.1, 0.05, 0.04, 0.03, 0.03]
        if current:
            device_p = [0.28, 0.26, 0.21, 0.1, 0.05, 0.04, 0.03, 0.03]
        promo = rng.random(n) < (0.5 if current else 0.3)
        frame = pd.DataFrame({
            "age": rng.normal(50 if current else 45, 12, n),
            "income": rng.lognormal(10, 0.5, n) * (1.25 if current else 1.0),
            "tenure": rng.exponential(24, n),
            "score": rng.uniform(0, 100, n) + (2 if current else 0),
            "balance": missing(rng.normal(1000, 300, n), 0.10),
            "latency": rng.gamma(2, 50, n) + (30 if current else 0),
            "region": region,
            "plan": missing(rng.choice(["basic", "plus", "pro"], size=n, p=[0.5, 0.3, 0.2]), 0.03),
            "device": rng.choice(device_names, size=n, p=device_p),
            "promo": missing(np.where(promo, "true", "false"), 0.02),
        })
        return frame

    for case in cases:
        n = int(case)
        reference, current = paths(folder, case)
        rng = np.random.default_rng([SEED, n])
        for path, is_current in ((reference, False), (current, True)):
            # Six decimals: both sides read the same text, so every tool sees the same values.
            table(rng, n, is_current).to_csv(path, index=False, float_format="%.6f")


# ----------------------------------------------------------------------------------------------- tools


def timed(run):
    """Runs `run` REPEAT times; returns the median seconds and the last result."""
    times, result = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_cyclone(binary, folder, case):
    reference, current = paths(folder, case)
    # Evidently tests each column alone: so does Cyclone here.
    args = [binary, "drift", "--reference", str(reference), "--current", str(current), "--json", "--correction", "none"]
    seconds, out = timed(lambda: subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    result = json.loads(out)
    columns = {c["feature"]: {"test": c["test"], "statistic": c.get("statistic"), "p_value": c.get("p_value"),
                              "drifted": c["drifted"], "kind": c["kind"]} for c in result["columns"]}
    save(folder, case, "cyclone", {"seconds": seconds, "columns": columns, "dataset_drift": result["dataset_drift"],
                                   "drifted": result["drifted"], "tested": result["tested"],
                                   "reference_rows": result["reference_rows"], "current_rows": result["current_rows"]})


def run_evidently(folder, case):
    start = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    import evidently
    imports = time.perf_counter() - start
    reference, current = paths(folder, case)
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL + BOOLEAN)

    def run():
        ref = Dataset.from_pandas(pd.read_csv(reference), data_definition=definition)
        cur = Dataset.from_pandas(pd.read_csv(current), data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
        return snapshot.dict()

    seconds, result = timed(run)
    columns, count = {}, None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            method = config["method"]  # resolved to the stattest's display name when left to the default
            columns[config["column"]] = {"method": method, "score": float(metric["value"]),
                                         "threshold": config["threshold"]}
        elif config["type"].endswith("DriftedColumnsCount"):
            count = metric["value"]
            share_threshold = config["drift_share"]
    # The display name back to the stattest's name, through Evidently's registry.
    from evidently.legacy.calculations.stattests.registry import _registered_stat_tests
    names = {}
    for by_type in _registered_stat_tests.values():
        for test in by_type.values():
            names[test.display_name] = test.name
    for column in columns.values():
        column["stattest"] = names.get(column["method"], column["method"])
        is_p = EVIDENTLY_TESTS.get(column["stattest"]) in P_VALUE_TESTS
        # The drift rule of each stattest: KS p ≤ threshold, the other p-value tests p < threshold, distances
        # ≥ threshold (evidently/legacy/calculations/stattests/*.py).
        if column["stattest"] == "ks":
            column["drifted"] = bool(column["score"] <= column["threshold"])
        elif is_p:
            column["drifted"] = bool(column["score"] < column["threshold"])
        else:
            column["drifted"] = bool(column["score"] >= column["threshold"])
    drifted = sum(c["drifted"] for c in columns.values())
    save(folder, case, "evidently", {
        "seconds": seconds, "imports": imports, "version": evidently.__version__, "columns": columns,
        "drifted": int(count["count"]), "share": count["share"], "tested": len(columns),
        "dataset_drift": bool(count["share"] >= share_threshold), "drifted_recount": int(drifted)})


def run_nannyml(folder, case):
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    start = time.perf_counter()
    import pandas as pd
    import nannyml as nml
    imports = time.perf_counter() - start
    reference, current = paths(folder, case)

    def run():
        ref = pd.read_csv(reference)
        cur = pd.read_csv(current)
        calculator = nml.UnivariateDriftCalculator(
            column_names=COLUMNS, treat_as_categorical=CATEGORICAL + BOOLEAN,
            continuous_methods=["wasserstein", "kolmogorov_smirnov"], categorical_methods=["jensen_shannon", "chi2"],
            chunk_number=1)
        calculator.fit(ref)
        frame = calculator.calculate(cur).filter(period="analysis").to_df()
        return frame, ref

    seconds, (frame, ref) = timed(run)
    columns = {}
    for column in COLUMNS:
        methods = {}
        for method in ("wasserstein", "kolmogorov_smirnov", "jensen_shannon", "chi2"):
            if (column, method, "value") in frame.columns:
                methods[method] = float(frame[(column, method, "value")].iloc[0])
                methods[method + "_alert"] = bool(frame[(column, method, "alert")].iloc[0])
        if column in NUMERIC:
            # NannyML's Wasserstein is in the feature's units; Evidently and Cyclone divide by the reference's
            # standard deviation (ddof 0).
            methods["reference_std"] = float(ref[column].dropna().std(ddof=0))
        columns[column] = methods
    save(folder, case, "nannyml", {"seconds": seconds, "imports": imports, "version": nml.__version__,
                                   "chunks": len(frame), "columns": columns})


def save(folder, case, tool, result):
    with open(Path(folder) / f"{case}-{tool}.json", "w") as f:
        json.dump(result, f, indent=1)


def load(folder, case, tool):
    with open(Path(folder) / f"{case}-{tool}.json") as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------------- report


def relative(a, b):
    if a is None or b is None:
        return None
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def times(x):
    return f"{x:.1f}×" if x < 10 else f"{x:.0f}×"


def diff(x):
    return "—" if x is None else "0" if x == 0 else f"{x:.1e}"


def fmt(x, digits=4):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}f}"


def report(folder, cases):
    rows = []
    for case in cases:
        cy, ev, nm = (load(folder, case, tool) for tool in ("cyclone", "evidently", "nannyml"))
        n = int(case)
        print(f"\n## {n:,} rows a side (reference {cy['reference_rows']:,}, current {cy['current_rows']:,})")
        print(f"cyclone {cy['seconds']:.3f} s; evidently {ev['version']} {ev['seconds']:.2f} s "
              f"(+{ev['imports']:.1f} s imports); nannyml {nm['version']} {nm['seconds']:.2f} s "
              f"(+{nm['imports']:.1f} s imports, {nm['chunks']} analysis chunk)")
        print()
        print("| column | cyclone test | cyclone statistic | cyclone p | drift | evidently test | evidently score | "
              "drift | agree | nannyml (same measure) | rel. diff |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        same = agree = 0
        disagreements, different_tests = [], []
        worst_evidently = (0.0, None)
        worst_nannyml = (0.0, None)
        for column in COLUMNS:
            c, e, m = cy["columns"][column], ev["columns"][column], nm["columns"][column]
            e_test = EVIDENTLY_TESTS.get(e["stattest"], e["stattest"])
            # Evidently's score: the p-value of a significance test, else the distance.
            c_score = c["p_value"] if c["test"] in P_VALUE_TESTS else c["statistic"]
            verdict = ""
            if e_test == c["test"]:
                same += 1
                if e["drifted"] == c["drifted"]:
                    agree += 1
                    verdict = "yes"
                else:
                    verdict = "NO"
                    disagreements.append((column, c, e))
                d = relative(c_score, e["score"])
                # p-values far below the threshold (1e-30 against 1e-31) say the same thing; compare the
                # distances and the p-values above 1e-6.
                if d is not None and not (c["test"] in P_VALUE_TESTS and max(c_score, e["score"]) < 1e-6):
                    if d > worst_evidently[0]:
                        worst_evidently = (d, f"{column} ({c['test']})")
            else:
                verdict = "other test"
                different_tests.append((column, c, e))
            # NannyML: the same measure where there is one (its chi2 is a contingency test, not the
            # goodness-of-fit test Cyclone and Evidently run, and its alerts are chunk-based by design).
            nm_value, nm_text = None, "—"
            if c["test"] == "wasserstein_normed" and "wasserstein" in m:
                nm_value = m["wasserstein"] / (m["reference_std"] or 1)
                nm_text = f"W/std {fmt(nm_value)}"
            elif c["test"] == "ks" and "kolmogorov_smirnov" in m:
                nm_value = m["kolmogorov_smirnov"]
                nm_text = f"D {fmt(nm_value)}"
            elif c["test"] == "jensen_shannon" and "jensen_shannon" in m:
                nm_value = m["jensen_shannon"] * math.sqrt(math.log(2))  # its base 2 → natural log
                nm_text = f"JS {fmt(nm_value)}"
            nm_diff = relative(c["statistic"], nm_value)
            if nm_diff is not None and nm_diff > worst_nannyml[0]:
                worst_nannyml = (nm_diff, f"{column} ({c['test']})")
            print(f"| {column} | {c['test']} | {fmt(c['statistic'])} | {fmt(c['p_value'])} | "
                  f"{'drift' if c['drifted'] else '-'} | {e_test} | {fmt(e['score'])} | "
                  f"{'drift' if e['drifted'] else '-'} | {verdict} | {nm_text} | {diff(nm_diff)} |")
        print()
        print(f"dataset drift: cyclone {'YES' if cy['dataset_drift'] else 'no'} ({cy['drifted']}/{cy['tested']}), "
              f"evidently {'YES' if ev['dataset_drift'] else 'no'} ({ev['drifted']}/{ev['tested']})")
        for column, c, e in disagreements:
            print(f"DISAGREE {column}: cyclone {c['test']} statistic {fmt(c['statistic'])} p {fmt(c['p_value'])} "
                  f"drift {c['drifted']}; evidently {e['stattest']} score {fmt(e['score'])} drift {e['drifted']}")
        for column, c, e in different_tests:
            print(f"other test {column}: cyclone {c['test']} ({fmt(c['statistic'])}, drift {c['drifted']}); "
                  f"evidently {e['stattest']} ({fmt(e['score'])}, drift {e['drifted']})")
        print(f"largest relative difference of the score with Evidently: {diff(worst_evidently[0])} "
              f"{worst_evidently[1] or ''}; with NannyML's same measure: {diff(worst_nannyml[0])} "
              f"{worst_nannyml[1] or ''}")
        rows.append(dict(n=n, cy=cy["seconds"], ev=ev["seconds"], nm=nm["seconds"], same=same, agree=agree,
                         cy_drift=cy["dataset_drift"], ev_drift=ev["dataset_drift"], ev_diff=worst_evidently[0],
                         nm_diff=worst_nannyml[0]))

    print("\n## Summary\n")
    print("| rows a side | Cyclone s | Evidently s | NannyML s | × Evidently | × NannyML | verdicts agree "
          "(same test) | dataset drift C / E | max rel. diff E | max rel. diff N |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['cy']:.3f} | {r['ev']:.2f} | {r['nm']:.2f} | {times(r['ev'] / r['cy'])} | "
              f"{times(r['nm'] / r['cy'])} | {r['agree']} of {r['same']} | "
              f"{'YES' if r['cy_drift'] else 'no'} / {'YES' if r['ev_drift'] else 'no'} | "
              f"{diff(r['ev_diff'])} | {diff(r['nm_diff'])} |")
    big = max(rows, key=lambda r: r["n"])
    agree, same = sum(r["agree"] for r in rows), sum(r["same"] for r in rows)
    large = [r["ev"] / r["cy"] for r in rows if r["n"] >= 10_000]
    target = ""
    if large:
        target = (f"; from 10,000 rows at least {times(min(large))} Evidently (target 20×: "
                  f"{'met' if min(large) >= 20 else 'missed'})")
    print()
    print(f"drift: Cyclone {times(big['ev'] / big['cy'])} Evidently and {times(big['nm'] / big['cy'])} NannyML at "
          f"{big['n']:,} rows, verdicts agree on {big['agree']} of {big['same']} columns "
          f"({agree} of {same} over all sizes){target}")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "generate":
        generate(args[0], args[1:])
    elif command == "cyclone":
        run_cyclone(*args)
    elif command == "evidently":
        run_evidently(*args)
    elif command == "nannyml":
        run_nannyml(*args)
    elif command == "report":
        report(args[0], args[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
