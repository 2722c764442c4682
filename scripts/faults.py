#!/usr/bin/env python3
"""Fault runs against a real predict and PostgreSQL (scripts/bench-faults starts them): load at a fixed rate
on loopback, PostgreSQL crashed and restarted, SIGTERM under load and during an outage, a poison request among
good ones, many large bodies at once. Prints one line per run and a summary; exits 1 if a target is missed.

Every answer is recorded: an acknowledged prediction (200 with Cyclone-Stored committed or buffered) must be in
PostgreSQL afterwards, or, when predict could not store it before it exited, in its log ("prediction not
stored", with the id). Only the standard library is used."""

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

INSTANCE = {"hour": 8, "workingday": True, "season": "summer", "weather": "clear", "temp": 24.5,
            "humidity": 0.41, "wind": 3.2}


class Recorder:
    def __init__(self):
        self.answers = []  # (time, status, stored, ids)
        self.errors = 0

    def acknowledged(self):
        return {i for (_, status, stored, ids) in self.answers if status == 200 and stored in ("committed", "buffered")
                for i in ids}

    def failed(self):
        return self.errors + sum(1 for (_, status, _, _) in self.answers if status >= 500 or status == 0)


async def post(reader, writer, path, body, headers=None):
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, stored, close = 0, "", False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "cyclone-stored":
            stored = value
        elif name == "connection" and value.lower() == "close":
            close = True
    payload = await reader.readexactly(length) if length else b""
    return status, stored, payload, close


async def load(port, rate, seconds, recorder, connections=20, body=None, stop=None):
    """Sends POST /predict at `rate` requests a second for `seconds` (or until `stop` is set)."""
    body = body or json.dumps({"instances": [INSTANCE]}).encode()
    interval = connections / rate
    deadline = time.monotonic() + seconds

    async def one():
        reader = writer = None
        next_at = time.monotonic()
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            next_at += interval
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
                status, stored, payload, close = await asyncio.wait_for(post(reader, writer, "/predict", body), 30)
                ids = []
                if status == 200:
                    ids = [p["id"] for p in json.loads(payload)["predictions"]]
                recorder.answers.append((time.monotonic(), status, stored, ids))
                if close:
                    writer.close()
                    writer = None
            except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                recorder.errors += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.05)
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


class Harness:
    def __init__(self, args):
        self.args = args
        self.bin = args.bin
        self.url = args.database_url
        self.work = args.work
        self.failures = []

    def psql(self, sql):
        return subprocess.run(["psql", "-tA", self.url, "-c", sql], check=True, capture_output=True,
                              text=True).stdout.strip()

    def pg(self, *words):
        subprocess.run([self.args.pg, *words], check=True, capture_output=True)

    def start_predict(self, port, extra=None):
        env = dict(os.environ, MODEL_PATH=f"{self.work}/model.json", PORT=str(port), DATABASE_URL=self.url,
                   LOG_LEVEL="warning", STORE_MODE="durable", STORE_BUFFER_ROWS="100000")
        env.update(extra or {})
        self.log = f"{self.work}/predict-{port}.log"
        process = subprocess.Popen([f"{self.bin}/predict"], env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(500):
            try:
                import urllib.request
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                return process
            except Exception:
                time.sleep(0.02)
        raise SystemExit(f"predict did not become ready: {open(self.log).read()[-2000:]}")

    def stop_predict(self, process):
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            status = "hung"
        return status, time.monotonic() - started

    def logged_ids(self):
        ids = set()
        for line in open(self.log, errors="replace"):
            if "prediction not stored" in line:
                match = re.search(r'"id":"([0-9a-f-]{36})"', line)
                if match:
                    ids.add(match.group(1))
        return ids

    def stored(self, ids):
        if not ids:
            return set()
        path = f"{self.work}/ids.txt"
        with open(path, "w") as f:
            f.write("\n".join(ids))
        script = (f"CREATE TEMP TABLE want(id uuid);\n\\copy want FROM '{path}'\n"
                  "SELECT p.id FROM prediction p JOIN want USING (id);\n")
        out = subprocess.run(["psql", "-qtA", "-v", "ON_ERROR_STOP=1", self.url], input=script, check=True,
                             capture_output=True, text=True).stdout
        return {line.strip() for line in out.splitlines() if re.fullmatch(r"[0-9a-f-]{36}", line.strip())}

    def check(self, name, ok, line):
        print(("ok   " if ok else "FAIL ") + name + ": " + line, flush=True)
        if not ok:
            self.failures.append(name)

    def verdict(self, name, recorder, status, exit_seconds, extra="", met=True):
        acked = recorder.acknowledged()
        stored = self.stored(acked)
        logged = self.logged_ids()
        lost = acked - stored - logged
        dropped = sum(1 for (_, s, stored_header, _) in recorder.answers if s == 200 and stored_header == "dropped")
        ok = met and recorder.failed() == 0 and not lost and status == 0 and exit_seconds < 10
        self.check(name, ok, f"{len(recorder.answers)} answers, {recorder.failed()} failed, {len(acked)} acknowledged, "
                             f"{len(acked & stored)} stored, {len(acked & logged - stored)} logged unstored, "
                             f"{len(lost)} lost, {dropped} dropped; exit {status} in {exit_seconds:.2f} s{extra}")

    # The runs.

    def outage(self, round_number):
        port = 18300 + round_number
        process = self.start_predict(port)
        recorder = Recorder()
        marks = {}

        async def run():
            async def faults():
                await asyncio.sleep(self.args.before)
                self.pg("crash", self.url)
                marks["down"] = time.monotonic()
                await asyncio.sleep(self.args.outage)
                self.pg("start", self.args.cluster)
                marks["up"] = time.monotonic()
            await asyncio.gather(load(port, self.args.rate, self.args.before + self.args.outage + self.args.after,
                                      recorder), faults())
        asyncio.run(run())
        status, exit_seconds = self.stop_predict(process)
        after = [t for (t, s, stored, _) in recorder.answers if s == 200 and stored == "committed" and t > marks["up"]]
        recovery = (after[0] - marks["up"]) if after else float("inf")
        self.verdict(f"outage {round_number + 1}", recorder, status, exit_seconds,
                     f"; storing again {recovery:.2f} s after PostgreSQL returned "
                     f"(target {self.args.recovery_target:g} s)", met=recovery <= self.args.recovery_target)
        return recovery

    def sigterm(self, during_outage):
        port = 18400 + (1 if during_outage else 0)
        process = self.start_predict(port)
        recorder = Recorder()
        marks = {}

        async def run():
            async def faults():
                if during_outage:
                    await asyncio.sleep(1)
                    self.pg("crash", self.url)
                await asyncio.sleep(2)
                marks["signal"] = time.monotonic()
                process.send_signal(signal.SIGTERM)
                try:
                    marks["status"] = await asyncio.to_thread(process.wait, 15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    marks["status"] = "hung"
                marks["exit"] = time.monotonic()
            await asyncio.gather(load(port, self.args.rate, 5, recorder), faults())
        asyncio.run(run())
        if during_outage:
            self.pg("start", self.args.cluster)
        # Connections refused once it stopped listening are not failures of what it accepted.
        recorder.errors = 0
        self.verdict("SIGTERM during an outage" if during_outage else "SIGTERM under load", recorder,
                     marks["status"], marks["exit"] - marks["signal"])

    def poison(self):
        port = 18500
        process = self.start_predict(port)
        good = Recorder()
        asyncio.run(load(port, self.args.rate, self.args.poison_good / self.args.rate, good))
        poisons = [
            {"instances": [INSTANCE], "keys": ["k" * 3000]},
            {"instances": [INSTANCE], "keys": ["a\u0000b"]},
            {"instances": [dict(INSTANCE, season="sum\u0000mer")]},
            {"instances": [dict(INSTANCE, temp=1e308)]},
        ]
        refused = []

        async def send_poison():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for body in poisons:
                status, _, _, _ = await post(reader, writer, "/predict", json.dumps(body).encode())
                refused.append(status)
            writer.close()
        asyncio.run(send_poison())
        after = Recorder()
        asyncio.run(load(port, self.args.rate, 2, after))
        status, exit_seconds = self.stop_predict(process)
        good.answers += after.answers
        good.errors += after.errors
        acked = good.acknowledged()
        stored = self.stored(acked)
        ok = refused == [400] * len(poisons) and acked == stored and good.failed() == 0
        self.check("poison", ok, f"poison answered {refused}; {len(acked)} good acknowledged, {len(stored)} stored")

    def bodies(self):
        port = 18600
        process = self.start_predict(port)
        pad = "x" * (10 * 1024 * 1024 - 200)
        body = json.dumps({"instances": [INSTANCE], "parameters": {"pad": pad}}).encode()
        statuses = []

        async def one():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, _, _, _ = await post(reader, writer, "/predict", body)
            statuses.append(status)
            writer.close()

        async def run():
            await asyncio.gather(*(one() for _ in range(16)))
        asyncio.run(run())
        peak = 0
        for line in open(f"/proc/{process.pid}/status"):
            if line.startswith("VmHWM"):
                peak = int(line.split()[1]) // 1024
        self.stop_predict(process)
        self.check("16 bodies of 10 MB", statuses == [200] * 16 and peak < 256,
                   f"answers {sorted(set(statuses))}, peak RSS {peak} MB")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--cluster", required=True, help="the cluster's folder, for scripts/pg start")
    parser.add_argument("--pg", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--outage", type=float, default=30)
    parser.add_argument("--before", type=float, default=5)
    parser.add_argument("--after", type=float, default=10)
    parser.add_argument("--poison-good", type=int, default=10000)
    parser.add_argument("--only", default="outage,sigterm,poison,bodies")
    parser.add_argument("--recovery-target", type=float, default=2.0,
                        help="most seconds from PostgreSQL's return to the first committed answer")
    args = parser.parse_args()
    harness = Harness(args)
    runs = args.only.split(",")
    recoveries = []
    if "outage" in runs:
        for n in range(args.rounds):
            recoveries.append(harness.outage(n))
    if "sigterm" in runs:
        harness.sigterm(False)
        harness.sigterm(True)
    if "poison" in runs:
        harness.poison()
    if "bodies" in runs:
        harness.bodies()
    if recoveries:
        print(f"storing again after PostgreSQL returned: best {min(recoveries):.2f} s, worst {max(recoveries):.2f} s")
    print(f"{len(harness.failures)} failed: {', '.join(harness.failures)}" if harness.failures else "every run met its target")
    sys.exit(1 if harness.failures else 0)


if __name__ == "__main__":
    main()
