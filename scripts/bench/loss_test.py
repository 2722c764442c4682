#!/usr/bin/env python3
"""False alarms and power of the loss trigger's test (LossShift) on streams with a known answer.

    loss_test.py [TRIALS]      TRIALS windows per stream (1000 by default); about a minute per 1000

Each trial draws a reference window and a current window of 168 hourly losses (a week each) from the same
stream: per-row losses exp(A·sin(2πh/24) + ε_h), ε an AR(1) of persistence φ (stationary, standard
deviation 0.5), with a daily cycle (A = 1) or none (A = 0). The current window's losses are multiplied by
1 (a stationary stream: every firing is a false alarm), 1.5 or 2 (the loss grew: every firing is a catch).
Two tests, each at p < 0.01, computed with SciPy:
  welch-batch   the trigger's: Welch's t-test (scipy.stats.ttest_ind, equal_var=False) on the means of 8
                consecutive batches of each window
  rank-lag1     the one it replaced: Mann-Whitney U (scipy.stats.mannwhitneyu, asymptotic), its z scaled by
                sqrt((1 - rho) / (1 + rho)), rho the lag-1 autocorrelation of the windows' ranks
Seeded: the same table on every run.
"""
import sys

import numpy as np
from scipy import stats

N, LEVEL = 168, 0.01


def stream(rng, n, phi, amplitude, start):
    noise = np.empty(n)
    x = rng.normal()
    for i in range(n):
        x = phi * x + np.sqrt(1 - phi * phi) * rng.normal()
        noise[i] = x
    hours = np.arange(start, start + n)
    return np.exp(amplitude * np.sin(2 * np.pi * hours / 24) + 0.5 * noise)


def welch_batch(current, reference):
    means = lambda v: [b.mean() for b in np.array_split(v, 8)]
    return stats.ttest_ind(means(current), means(reference), equal_var=False, alternative="greater").pvalue


def rank_lag1(current, reference):
    u = stats.mannwhitneyu(current, reference, alternative="greater", method="asymptotic").statistic
    ranks = stats.rankdata(np.concatenate([current, reference]))

    def lag1(v):
        v = v - v.mean()
        return (v[:-1] * v[1:]).sum() / (v * v).sum()

    n1, n2 = len(current), len(reference)
    rho = min(max((n1 * lag1(ranks[:n1]) + n2 * lag1(ranks[n1:])) / (n1 + n2), 0), 0.99)
    _, counts = np.unique(ranks, return_counts=True)
    n = n1 + n2
    sigma = np.sqrt(n1 * n2 / 12 * ((n + 1) - (counts ** 3 - counts).sum() / (n * (n - 1))))
    z = (u - n1 * n2 / 2 - 0.5) / sigma * np.sqrt((1 - rho) / (1 + rho))
    return stats.norm.sf(z)


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = np.random.default_rng(20261207)
    print(f"{trials} trials a cell, windows of {N} against {N}, firing at p < {LEVEL}")
    print(f"{'stream':<26}{'test':<14}{'false alarms':>14}{'caught x1.5':>13}{'caught x2':>11}")
    for amplitude in (0.0, 1.0):
        for phi in (0.0, 0.5, 0.8, 0.95):
            fired = {"welch-batch": [0, 0, 0], "rank-lag1": [0, 0, 0]}
            for _ in range(trials):
                reference = stream(rng, N, phi, amplitude, 0)
                current = stream(rng, N, phi, amplitude, N)
                for k, factor in enumerate((1.0, 1.5, 2.0)):
                    for name, test in (("welch-batch", welch_batch), ("rank-lag1", rank_lag1)):
                        fired[name][k] += test(current * factor, reference) < LEVEL
            label = f"phi {phi}, " + ("daily cycle" if amplitude else "no cycle")
            for name, counts in fired.items():
                a, b, c = (100 * v / trials for v in counts)
                print(f"{label:<26}{name:<14}{a:>13.1f}%{b:>12.1f}%{c:>10.1f}%")


if __name__ == "__main__":
    main()
