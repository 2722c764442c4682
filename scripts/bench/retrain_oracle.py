#!/usr/bin/env python3
"""How good can K retrains be, on the best days in hindsight? Issue 18's targets ask the loop for the better
monthly baseline's error with 60 % of its retrains; this says whether a schedule of retrains could, on a
series, with scikit-learn's HistGradientBoosting standing in for Cyclone's trees (the same size: 300 rounds
at 0.1, depth 6, 31 leaves, 20 rows a leaf, L2 1; but it stops early on a random 10 %, not the newest, and
does not refit on every row as Cyclone's trees now do).

    retrain_oracle.py CSV TARGET [--categorical a,b] [--classify] [--step2]

The replay of scripts/bench-loop: the first model on January, the replay from 1 February, labels a day late;
the baselines retrain at every month's start from March (10 retrains) on the newest 720 labelled rows or on
all. The oracle picks up to K retrain days (at midnight; every day, or every other with --step2) and for each
a window (720, 2160 or all labelled rows known then), deploys at once (no shadow), and minimises the mean
monthly error by dynamic programming over the days (log loss exactly; for RMSE it minimises the mean monthly
MSE and reports the RMSE its schedule reaches, a bound a little above the best one for RMSE itself). A retrain
on 2 February sees the first model's rows only (labels are a day late): the DP never needs it. It trains three models a candidate day: minutes per series. Not part of the tests.

    python scripts/bench/retrain_oracle.py synthetic.csv count     # cyclone demo --export synthetic.csv
    python scripts/bench/retrain_oracle.py hyperplane.csv label --categorical region --classify --step2
    python scripts/bench/retrain_oracle.py seattle.csv temp --step2  # scripts/bench/series.py writes both
"""
import sys
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, HistGradientBoostingClassifier

path, target = sys.argv[1], sys.argv[2]
STEP = "2D" if "--step2" in sys.argv else "D"
categorical = []
classify = "--classify" in sys.argv
if "--categorical" in sys.argv:
    categorical = sys.argv[sys.argv.index("--categorical") + 1].split(",")
frame = pd.read_csv(path)
times = pd.to_datetime(frame["time"], utc=True)
y_raw = frame[target]
X = frame.drop(columns=["time", target])
for c in X.columns:
    if X[c].dtype == object or X[c].dtype == bool or c in categorical:
        X[c] = X[c].astype(str).astype("category")
if classify:
    classes = sorted(y_raw.unique())
    y = np.array([classes.index(v) for v in y_raw])
else:
    y = y_raw.to_numpy(float)
year = times.dt.year.iloc[0]
start = pd.Timestamp(year=year, month=2, day=1, tz="UTC")
delay = pd.Timedelta(days=1)
replay = np.where(times >= start)[0]
month = times.dt.month.to_numpy()
months = sorted(set(month[replay]))
weights = np.zeros(len(y))
for m in months:
    rows = replay[month[replay] == m]
    weights[rows] = 1.0 / (len(rows) * len(months))


def model():
    kw = dict(max_iter=300, learning_rate=0.1, max_depth=6, max_leaf_nodes=31, min_samples_leaf=20,
              l2_regularization=1.0, early_stopping=True, validation_fraction=0.1, n_iter_no_change=20,
              random_state=7, categorical_features="from_dtype")
    return HistGradientBoostingClassifier(**kw) if classify else HistGradientBoostingRegressor(**kw)


def train(until, window):
    known = np.where(times < until - delay)[0]
    rows = known if window is None else known[-window:]
    m = model()
    m.fit(X.iloc[rows], y[rows])
    return m


def losses(m):
    """Per-row loss of m on every replay row (log loss, or squared error)."""
    out = np.zeros(len(y))
    if classify:
        p = m.predict_proba(X.iloc[replay])
        p = np.clip(p, 1e-15, 1 - 1e-15)
        full = np.zeros((len(replay), len(classes)))
        full[:, m.classes_] = p
        full = np.clip(full, 1e-15, 1)
        out[replay] = -np.log(full[np.arange(len(replay)), y[replay]])
    else:
        out[replay] = (m.predict(X.iloc[replay]) - y[replay]) ** 2
    return out


def score(loss):
    """Mean monthly error of per-row losses."""
    values = []
    for m in months:
        rows = replay[month[replay] == m]
        v = loss[rows].mean()
        values.append(v if classify else np.sqrt(v))
    return float(np.mean(values))


first = losses(train(start + delay, None))
print(f"first model: {score(first):.4g}")
month_starts = [pd.Timestamp(year=year, month=m, day=1, tz="UTC") for m in months[1:]]
for name, window in [("every month", 720), ("expanding", None)]:
    loss = first.copy()
    for s in month_starts:
        rows = replay[times.iloc[replay] >= s]
        loss[rows] = losses(train(s, window))[rows]
    print(f"{name}: {score(loss):.4g} with {len(month_starts)} retrains")

# Candidate retrains: every day from 2 February, each window.
days = pd.date_range(start + pd.Timedelta(days=1), times.iloc[-1].normalize(), freq=STEP)
day_index = np.searchsorted(times.to_numpy(), days.to_numpy())  # first row of each day
candidates = []  # (day position, window, prefix sums of weighted losses, per-row losses)
for d, day in enumerate(days):
    for window in (720, 2160, None):
        loss = losses(train(day, window))
        candidates.append((d, window, np.concatenate([[0], np.cumsum(loss * weights)]), loss))
    if d % 30 == 0:
        print(f"  trained day {d} of {len(days)}", file=sys.stderr)
base = np.concatenate([[0], np.cumsum(first * weights)])
n = len(y)
bounds = list(day_index) + [n]


# cost[k][c]: the least weighted loss from 1 February to candidate c's day with c the k-th retrain; P[c][d]: the
# prefix sum of c's weighted losses at day d's first row.
D = len(days)
C = len(candidates)
cand_day = np.array([c[0] for c in candidates])
P = np.array([[c[2][bounds[d]] for d in range(D + 1)] for c in candidates])  # C x (D+1)
Pd0 = P[np.arange(C), cand_day]
first_row = replay[0]
for K in (3, 4, 5, 6, 8, 10):
    INF = np.inf
    cost = np.full((K + 1, C), INF)
    back = np.full((K + 1, C), -1)
    cost[1] = base[np.array(bounds)[cand_day]] - base[first_row]
    for k in range(2, K + 1):
        for d in range(D):
            vals = cost[k - 1] + P[:, d] - Pd0
            vals[cand_day >= d] = INF
            arg = int(np.argmin(vals))
            here = cand_day == d
            cost[k, here] = vals[arg]
            back[k, here] = arg if vals[arg] < INF else -1
    ends = cost + (P[:, D] - Pd0)[None, :]
    ends[0] = INF
    k, c = np.unravel_index(np.argmin(ends), ends.shape)
    schedule = []
    while c != -1 and k >= 1:
        schedule.append(int(c))
        c = back[k, c]
        k -= 1
    schedule.reverse()
    loss = first.copy()
    for c in schedule:
        d, w, _, l = candidates[c]
        rows = np.arange(bounds[d], n)
        loss[rows] = l[rows]
    print(f"oracle, at most {K} retrains: {score(loss):.4g} with {len(schedule)}: "
          + ", ".join(f"{days[candidates[c][0]].strftime('%m-%d')}/{candidates[c][1] or 'all'}" for c in schedule))
    sys.stdout.flush()
