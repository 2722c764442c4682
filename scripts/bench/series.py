#!/usr/bin/env python3
"""The drifting series the loop benchmark replays besides the synthetic year (scripts/bench-loop).

    series.py FOLDER    writes FOLDER/seattle.csv and FOLDER/hyperplane.csv

seattle.csv     Seattle's hourly temperature through 2010, as vega_datasets ships it (a real series from a
                package; its `seattle-temps` data set, bundled, no download). Each row predicts the hour's
                temperature (°F) from the hour of day and the temperature 24 hours before: the relation moves
                with the seasons (the daily swing and the day-to-day persistence change), the drift a model
                trained on January meets.
hyperplane.csv  A made binary stream, hourly through 2025: four uniform features and a region; the label is
                whether a noisy linear score is positive, with the plane turning slowly all year (gradual
                concept drift, the rotating hyperplane of Hulten et al. 2001) and the regions' effects
                swapped on 1 July (an abrupt change). Seeded: the same file on every run.
"""
import csv
import math
import pathlib
import random
import sys
from datetime import datetime, timedelta, timezone


def seattle(path):
    from vega_datasets import local_data
    frame = local_data.seattle_temps()
    times = [t.to_pydatetime().replace(tzinfo=timezone.utc) for t in frame["date"]]
    temps = [float(v) for v in frame["temp"]]
    by_time = dict(zip(times, temps))
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["time", "hour", "temp_24h_before", "temp"])
        for time, temp in zip(times, temps):
            before = by_time.get(time - timedelta(hours=24))
            if before is None:
                continue
            writer.writerow([time.strftime("%Y-%m-%dT%H:%M:%SZ"), time.hour, before, temp])


def hyperplane(path):
    rng = random.Random(20261206)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    hours = 365 * 24
    swap = datetime(2025, 7, 1, tzinfo=timezone.utc)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["time", "x1", "x2", "x3", "x4", "region", "label"])
        for hour in range(hours):
            time = start + timedelta(hours=hour)
            angle = math.pi * hour / hours  # the plane turns half a circle over the year
            x = [rng.random() for _ in range(4)]
            region = rng.choice(["north", "south", "east"])
            effect = {"north": 0.25, "south": -0.25, "east": 0.0}[region]
            if time >= swap:
                effect = -effect
            score = (math.cos(angle) * (x[0] - 0.5) + math.sin(angle) * (x[1] - 0.5) + 0.3 * (x[2] - 0.5)
                     + effect + rng.gauss(0, 0.15))
            writer.writerow([time.strftime("%Y-%m-%dT%H:%M:%SZ")] + [f"{v:.4f}" for v in x]
                            + [region, "yes" if score > 0 else "no"])


def main():
    folder = pathlib.Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    seattle(folder / "seattle.csv")
    hyperplane(folder / "hyperplane.csv")
    print(f"wrote {folder}/seattle.csv and {folder}/hyperplane.csv")


if __name__ == "__main__":
    main()
