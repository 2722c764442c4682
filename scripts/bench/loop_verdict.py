#!/usr/bin/env python3
"""Reads the logs of `cyclone demo` runs (scripts/bench-loop) and prints, per series, the closing table's
figures against issue 18's targets: the loop's mean monthly error at most that of the better calendar
baseline (every month, expanding), with at most 60 % of that baseline's retrains; every run's table the
same; no shadow promoted whose loss on its look's pairs was higher than live's.

    loop_verdict.py SERIES:LOG[,LOG…] …     exits 1 when a target is missed
"""
import re
import sys


def table(log):
    lines = open(log).read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("per month, lower is better"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("deploys"))
    return lines[start:end + 1], lines


def row(table_lines, name):
    line = next(line for line in table_lines if line.split()[0] == name)
    return line.split()[1:]


def main():
    failed = False
    print(f"{'series':<12} {'runs':>4} {'same':>5} {'loop mean':>10} {'best baseline':>22} {'retrains':>9} "
          f"{'baseline':>9} {'share':>6} {'promoted worse':>15}  verdict")
    for argument in sys.argv[1:]:
        series, logs = argument.split(":", 1)
        tables = [table(log) for log in logs.split(",")]
        same = all(t[0] == tables[0][0] for t in tables)
        lines, everything = tables[0]
        header = lines[1].split()
        mean = [float(v) if v not in ("–", "-") else float("nan") for v in row(lines, "mean")]
        retrains = [int(v) for v in row(lines, "retrains")]
        # The mean row has no rows column: first model, loop, every month, expanding.
        loop, monthly, expanding = mean[1], mean[2], mean[3]
        best_name, best = ("every month", monthly) if monthly <= expanding else ("expanding", expanding)
        baseline_retrains = retrains[2] if best_name == "every month" else retrains[3]
        share = retrains[1] / baseline_retrains if baseline_retrains else float("inf")
        # Promotion needs the shadow's mean loss to be lower on its look's pairs; a promotion whose figures say
        # otherwise would be a bug, and is counted.
        worse = sum(1 for line in everything
                    if "shadow promoted" in line and re.search(r"\((-[0-9.e+-]+|-inf|nan) % lower\)", line))
        ok = same and loop <= best and share <= 0.6 and worse == 0
        failed |= not ok
        print(f"{series:<12} {len(tables):>4} {'yes' if same else 'NO':>5} {loop:>10.4g} "
              f"{best_name + ' ' + format(best, '.4g'):>22} {retrains[1]:>9} {baseline_retrains:>9} "
              f"{share:>6.0%} {worse:>15}  {'meets the targets' if ok else 'misses'}")
        if not same:
            for i, t in enumerate(tables[1:], 2):
                if t[0] != tables[0][0]:
                    print(f"  run {i} differs from run 1:")
                    for a, b in zip(tables[0][0], t[0]):
                        if a != b:
                            print(f"    1: {a}\n    {i}: {b}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
