#!/usr/bin/env python3
"""Reliability trials of binance-import, with figures: crash and resume (SIGKILL at seeded random
points), clean stops (SIGTERM/SIGINT), faults of the archive host and of MarketStore, hostile
input, and memory under a 200-unit job. Writes a markdown report (docs/reliability.md through
`make reliability`; a temporary file in `make test`). Exits 1 if any trial did not end as required.

usage: reliability.py --bin .build/debug/binance-import --out docs/reliability.md [--trials 20] [--seed 7]
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import shutil
import sqlite3
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import gen_archives  # noqa: E402

failures = []


class Server:
    def __init__(self, script, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests/servers", script), *args, "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.url = line.split("listening on ")[1].strip()
        self.base = self.url.rsplit("/", 1)[0] if self.url.endswith("/rpc") else self.url.rstrip("/")

    def control(self, **cmd):
        req = urllib.request.Request(self.base + "/_control", data=json.dumps(cmd).encode(), method="POST")
        urllib.request.urlopen(req).read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def rpc(url, method, params):
    body = msgpack.packb({"method": method, "id": "1", "jsonrpc": "2.0", "params": params})
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-msgpack"}, method="POST")
    return msgpack.unpackb(urllib.request.urlopen(req).read(), raw=False)


def server_snapshot(url, keys):
    """Every row of every key, as column bytes."""
    out = {}
    for key in keys:
        sym, tf, group = key.split("/")
        reply = rpc(url, "DataService.Query", {"requests": [{"destination": key}]})
        if "error" in reply:
            out[key] = None
            continue
        ds = reply["result"]["responses"][0]["result"]
        out[key] = [hashlib.sha256(b).hexdigest() for b in ds["data"]]
    return out


def directory_snapshot(root):
    """A hash per file; for a variable-length year file (trades), of its records interval by
    interval: a reconciled file keeps superseded blocks where a clean run's has none, so its
    bytes differ while the records it serves are the same."""
    out = {}
    for base, _, files in os.walk(root):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                head = fh.read(37024)
                if f.endswith(".bin") and len(head) == 37024 and struct.unpack_from("<q", head, 280)[0] == 1:
                    out[os.path.relpath(p, root)] = variable_records_hash(fh)
                else:
                    out[os.path.relpath(p, root)] = hashlib.sha256(head + fh.read()).hexdigest()
    return out


def variable_records_hash(fh):
    """SHA-256 of a variable-length year file's records in slot order (its holes skipped)."""
    head = os.pread(fh.fileno(), 280, 0)
    year, timeframe = struct.unpack_from("<q", head, 264)[0], struct.unpack_from("<q", head, 272)[0] // 10**9
    days = 366 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 365
    digest, fd, offset = hashlib.sha256(), fh.fileno(), 37024
    slots_end = 37024 + days * 86400 // timeframe * 24
    while offset < slots_end:
        try:
            offset = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:
            break
        offset -= (offset - 37024) % 24
        chunk = os.pread(fd, min(24 * 65536, slots_end - offset), offset)
        for k in range(0, len(chunk) - 23, 24):
            index, at, length = struct.unpack_from("<qqq", chunk, k)
            if index == 0:
                continue
            digest.update(struct.pack("<q", index) + snappy_decode(os.pread(fd, length, at)))
        offset += len(chunk)
    return digest.hexdigest()


def snappy_decode(block):
    """Snappy's block format (literals and back-references)."""
    n = shift = at = 0
    while True:
        b = block[at]
        at += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    out = bytearray()
    while at < len(block):
        tag = block[at]
        at += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(block[at:at + extra], "little")
                at += extra
            out += block[at:at + length + 1]
            at += length + 1
            continue
        if kind == 1:
            length, offset = 4 + ((tag >> 2) & 7), ((tag >> 5) << 8) | block[at]
            at += 1
        else:
            width = 2 if kind == 2 else 4
            length, offset = 1 + (tag >> 2), int.from_bytes(block[at:at + width], "little")
            at += width
        for _ in range(length):
            out.append(out[-offset])
    assert len(out) == n, "snappy block length"
    return bytes(out)


class Job:
    def __init__(self, work, archives_url, target, name, symbols, months, chunk_rows=500, downloads=3, dataset=None, market="spot",
                 today="2024-12-15"):
        """An hourly kline job, or (dataset: fundingRate or metrics) one of that futures dataset,
        run as of `today`."""
        self.work, self.name, self.today = work, name, today
        self.manifest = os.path.join(work, "state", name + ".manifest.db")
        self.cache = os.path.join(work, "cache-" + name)
        self.path = os.path.join(work, name + ".yml")
        target_yaml = ("marketstore: " + target) if target.startswith("http") else ("directory: " + target)
        open(self.path, "w").write(f"""name: {name}
source:
  base_url: {archives_url}/
  listing_url: {archives_url}/listing
  cache_dir: {self.cache}
market: {market}
symbols: [{", ".join(symbols)}]
{"dataset: " + dataset if dataset else "intervals: [1h]"}
from: {months[0]}
to: {months[-1]}
target:
  {target_yaml}
write:
  chunk_rows: {chunk_rows}
concurrency:
  downloads: {downloads}
manifest: {self.manifest}
""")

    def reset(self):
        for p in (self.manifest, self.manifest + "-wal", self.manifest + "-shm", self.manifest + ".lock"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(self.cache, ignore_errors=True)

    def manifest_units(self):
        """The state database's units as {id: {"status": ...}}, read as any SQLite client would
        (with the write-ahead log of a killed run, which SQLite replays)."""
        if not os.path.exists(self.manifest):
            return {}
        db = sqlite3.connect(self.manifest)
        try:
            return {i: {"id": i, "status": s} for i, s in db.execute("SELECT id, status FROM units")}
        finally:
            db.close()


def run(binary, args, env_today="2024-12-15", timeout=300):
    env = dict(os.environ, BINANCE_IMPORT_TODAY=env_today)
    p = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def start(binary, args, env_today="2024-12-15"):
    env = dict(os.environ, BINANCE_IMPORT_TODAY=env_today)
    return subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def crash_trials(binary, work, archives, symbols, months, trials, rng, lines):
    lines += ["## 1. Crash and resume (SIGKILL)", "",
              f"A job of {len(symbols)} symbols x {len(months)} months of hourly archives ({len(symbols) * len(months)} units, "
              "write requests of 500 rows), killed with SIGKILL at a seeded random time within 5-80% of the fastest of three "
              "clean runs (each archive answered 150 ms late), then re-run with the same command. Each trial starts from an empty target, manifest and cache, so "
              "kills land in downloads, decodes, writes and manifest updates alike. Then the same for a job of 5-minute "
              "futures metrics (daily archives) and one of funding rates (monthly archives).", ""]
    paths = [f"data/spot/monthly/klines/{sym}/1h/{sym}-1h-{m}.zip" for sym in symbols for m in months]
    kill_and_resume(binary, work, archives, "klines", [f"{s}/1H/OHLCV" for s in symbols], paths,
                    lambda target, name: Job(work, archives.base, target, name, symbols, months), trials, rng, lines)
    metric_days = [f"2026-06-{d:02d}" for d in range(20, 30)]
    paths = [f"data/futures/um/daily/metrics/{sym}/{sym}-metrics-{d}.zip" for sym in symbols for d in metric_days]
    kill_and_resume(binary, work, archives, "metrics", [f"{s}/5Min/METRICS" for s in symbols], paths,
                    lambda target, name: Job(work, archives.base, target, name, symbols, ["2026-06"], dataset="metrics", market="futures/um",
                                                        today="2026-11-29"),
                    trials // 2, rng, lines)
    funding_months = [f"2025-{m:02d}" for m in range(1, 13)]
    paths = [f"data/futures/um/monthly/fundingRate/{sym}/{sym}-fundingRate-{m}.zip" for sym in symbols for m in funding_months]
    kill_and_resume(binary, work, archives, "fundingRate", [f"{s}/1H/FUNDING" for s in symbols], paths,
                    lambda target, name: Job(work, archives.base, target, name, symbols, ["2025-01", "2025-12"], dataset="fundingRate",
                                                        market="futures/um", today="2026-11-29"),
                    trials // 2, rng, lines)
    trade_months = ["2024-01", "2024-02", "2024-03"]
    paths = [f"data/spot/monthly/trades/{sym}/{sym}-trades-{m}.zip" for sym in symbols for m in trade_months]
    lines += ["Trades append (MarketStore's variable-length buckets): the data equal to a clean run means every trade once, "
              "in the same order, after a kill at any point (the test server answers a request whole or not at all; a request "
              "applied in part, or still being applied, is tried in-process by TradesPipelineTests). Into the directory target the "
              "comparison is of each year file's records, interval by interval (a reconciled file keeps superseded blocks).", ""]
    kill_and_resume(binary, work, archives, "trades", [f"{s}/1Sec/TRADES" for s in symbols], paths,
                    lambda target, name: Job(work, archives.base, target, name, symbols, trade_months, dataset="trades"),
                    trials, rng, lines)


def publish_trades(tree, symbols, per_month=6000):
    """Synthetic spot trades for 2024-01..03: `per_month` trades a month with consecutive IDs
    across months and distinct millisecond times (so a key's records have one order), with
    their CHECKSUMs."""
    for sym in symbols:
        trade_id = 1_000_000
        for m in (1, 2, 3):
            start, end = calendar_day(2024, m, 1) * 1000, calendar_day(2024, m + 1, 1) * 1000
            step = (end - start) // per_month
            rows = []
            for i in range(per_month):
                price = f"{40000 + trade_id % 977}.{(trade_id * 7919) % 100000000:08d}"
                rows.append(f"{trade_id},{price},0.{trade_id % 9973:05d},{trade_id % 3 * 1.25},{start + i * step + trade_id % 17},"
                            f"{'True' if trade_id % 2 else 'False'},True")
                trade_id += 1
            write_zip(os.path.join(tree, f"data/spot/monthly/trades/{sym}"), f"{sym}-trades-2024-{m:02d}.zip", "\n".join(rows) + "\n")


def write_zip(folder, name, text):
    """`name` holding `text` as its CSV member, and its CHECKSUM beside it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name[:-4] + ".csv", text)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    open(path + ".CHECKSUM", "w").write(f"{digest}  {name}\n")


def publish_futures(tree, symbols):
    """Synthetic USD-M metrics (2026-06-20..29, across the 2026-06-25 label change) and funding
    rates (2025, every 8 h) for `symbols`, with their CHECKSUMs."""
    write = write_zip
    for sym in symbols:
        for d in range(20, 30):
            day = calendar_day(2026, 6, d)
            labels = range(day + 300, day + 86400 + 1, 300) if d < 25 else range(day, day + 86400, 300)
            rows = ["create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
                    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"]
            rows += [f"{datetime.datetime.fromtimestamp(t, datetime.timezone.utc):%Y-%m-%d %H:%M:%S},{sym},{t % 9973}.25,{t}.5,0.{t % 97},1.{t % 89},2.{t % 83},0.{t % 79}"
                     for t in labels]
            write(os.path.join(tree, f"data/futures/um/daily/metrics/{sym}"), f"{sym}-metrics-2026-06-{d:02d}.zip", "\n".join(rows) + "\n")
        for m in range(1, 13):
            start = calendar_day(2025, m, 1)
            end = calendar_day(2025 + m // 12, m % 12 + 1, 1)
            rows = ["calc_time,funding_interval_hours,last_funding_rate"]
            rows += [f"{t * 1000 + (t // 3600) % 7},8,{((t // 3600) * 37 % 200 - 100) / 1e6:.8f}" for t in range(start, end, 8 * 3600)]
            write(os.path.join(tree, f"data/futures/um/monthly/fundingRate/{sym}"), f"{sym}-fundingRate-2025-{m:02d}.zip", "\n".join(rows) + "\n")


def calendar_day(y, m, d):
    return int(datetime.datetime(y, m, d, tzinfo=datetime.timezone.utc).timestamp())


def kill_and_resume(binary, work, archives, label, keys, paths, make_job, trials, rng, lines, targets=("marketstore", "directory")):
    """`trials` SIGKILL trials per target of the job `make_job(target, name)` whose archives are
    `paths` (each answered 150 ms late), against three clean runs."""
    lines += [f"### {label}", "",
              "| target | trials | killed while running (SIGKILL observed) | killed before all units were done | of those, with some done | re-run exit 0 | data equal to a clean run | manifest all done | units done at the kill (min-max) |",
              "|---|---|---|---|---|---|---|---|---|"]

    def paced():
        # Each archive answered 150 ms late: the run spans several group commits (a run of this
        # job on loopback is otherwise shorter than one), so kills land before, between and
        # after commits.
        archives.control(reset=True)
        for path in paths:
            archives.control(path=path, fault="delay", seconds=0.15, times=1)

    clean_times, notes = [], []
    for target_kind in targets:
        if target_kind == "marketstore":
            ms = Server("marketstore_server.py")
            target, snapshot = ms.url, (lambda: server_snapshot(ms.url, keys))
            reset_target = lambda: ms.control(reset=True)  # noqa: E731
        else:
            ms = None
            target = os.path.join(work, "mktsdb")
            snapshot = lambda: directory_snapshot(target)  # noqa: E731
            reset_target = lambda: shutil.rmtree(target, ignore_errors=True)  # noqa: E731
        job = make_job(target, f"crash-{label}-{target_kind}")
        # Kills are drawn within the fastest of three clean runs: one run's time varies, and a
        # kill drawn past a faster run's end finds the process gone.
        clean_runs = []
        for _ in range(3):
            reset_target()
            job.reset()
            paced()
            t0 = time.time()
            code, out = run(binary, ["run", job.path], env_today=job.today)
            clean_runs.append(time.time() - t0)
            check(code == 0, f"clean run ({label}, {target_kind}): {out[-300:]}")
        clean_seconds = min(clean_runs)
        reference = snapshot()
        check(bool(reference) and all(reference.values()), f"clean run ({label}, {target_kind}) left rows of every key")
        total = len(paths)
        killed, mid_run, some_done, reran_ok, equal, all_done, done_at_kill, writing_at_kill = 0, 0, 0, 0, 0, 0, [], 0
        redrawn = 0
        for _ in range(trials):
            # A run that ends before its kill tests nothing: on a shared machine the three clean
            # runs can all be slowed by a neighbour, so such a run shortens the window (its own time
            # is a faster clean run) and the trial is drawn again, at most 3 times.
            for _attempt in range(4):
                reset_target()
                job.reset()
                paced()
                landed, elapsed = run_and_kill(binary, job, rng.uniform(0.05, 0.8) * clean_seconds)
                if landed:
                    break
                clean_seconds = min(clean_seconds, elapsed)
                redrawn += 1
            killed += landed  # died of the kill, not finished before it
            done = sum(1 for u in job.manifest_units().values() if u["status"] == "done")
            # Appended rows (trades): a unit recorded `writing` has rows in the target the re-run reconciles.
            writing_at_kill += any(u["status"] == "writing" for u in job.manifest_units().values())
            mid_run += done < total  # the work was not over: the kill interrupted it
            some_done += 0 < done < total
            done_at_kill.append(done)
            code, out = run(binary, ["run", job.path], env_today=job.today)
            reran_ok += code == 0
            same = snapshot() == reference
            equal += same
            units = job.manifest_units()
            done_units = [u for u in units.values() if u["status"] == "done"]
            all_done += len(done_units) == total and all(u["status"] in ("done", "not_published") for u in units.values())
        check(killed == trials, f"crash trials ({label}, {target_kind}): {trials - killed} run(s) ended before the kill, each drawn 4 times")
        # Kills are drawn between 5% and 80% of the fastest clean run; the run may still end its work
        # first on a loaded machine, but not in most trials.
        check(mid_run >= trials // 2, f"crash trials ({label}, {target_kind}): only {mid_run} of {trials} kills landed before the work was over")
        check(reran_ok == trials and equal == trials and all_done == trials, f"crash trials ({label}, {target_kind})")
        lines.append(f"| {target_kind} | {trials} | {killed} | {mid_run} | {some_done} | {reran_ok} | {equal} | {all_done} | {min(done_at_kill)}-{max(done_at_kill)} |")
        if redrawn:
            notes.append(f"Into {target_kind}, {redrawn} run(s) ended before their kill (faster than the three clean runs) "
                         "and were drawn again within their own time.")
        if writing_at_kill:
            notes.append(f"Into {target_kind}, {writing_at_kill} of the {trials} kills left a unit `writing` (some of its trades sent, "
                         "not yet recorded done): the re-run read their IDs back and appended only the missing ones.")
        if label == "trades" and target_kind == "marketstore":  # a file write is too quick to hit often
            check(writing_at_kill >= trials // 4, f"crash trials (trades): only {writing_at_kill} of {trials} kills landed while a unit was being written")
        if ms:
            ms.stop()
        clean_times.append(f"{clean_seconds:.2f} s into {target_kind}")
    lines += [""] + [n + "\n" for n in notes] + [f"(A clean run of this job took {', '.join(clean_times)}.)", ""]


def run_and_kill(binary, job, after):
    """Runs `job` and sends SIGKILL `after` seconds in: whether the kill ended it, and how long
    it ran."""
    p = start(binary, ["run", job.path], env_today=job.today)
    t0 = time.time()
    try:
        p.communicate(timeout=after)  # reads its output meanwhile: a full pipe must not stall it
        return False, time.time() - t0
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.communicate()
        return p.returncode == -signal.SIGKILL, after  # it may have ended just before the signal


def signal_trials(binary, work, archives, symbols, months, rng, lines):
    lines += ["## 1b. Clean stop (SIGTERM, SIGINT)", "",
              "The same job against a MarketStore test server that takes 0.3 s per write, stopped by a signal half way.", "",
              "| signal | seconds to exit | exit code | says how to resume | units done | verify after the stop | re-run exit | data equal |",
              "|---|---|---|---|---|---|---|---|"]
    keys = [f"{s}/1H/OHLCV" for s in symbols]
    ms = Server("marketstore_server.py")
    job = Job(work, archives.base, ms.url, "signals", symbols, months)
    job.reset()
    code, _ = run(binary, ["run", job.path])
    reference = server_snapshot(ms.url, keys)
    for sig in (signal.SIGTERM, signal.SIGINT):
        ms.control(reset=True)
        job.reset()
        for n in range(1, 40):
            ms.control(delay_write=n, delay=0.3)
        p = start(binary, ["run", job.path])
        time.sleep(1.0)
        t0 = time.time()
        p.send_signal(sig)
        out, _ = p.communicate(timeout=30)
        seconds = time.time() - t0
        done = sum(1 for u in job.manifest_units().values() if u["status"] == "done")
        vcode, vout = run(binary, ["verify", job.path])
        ms.control(reset=False)
        code2, _ = run(binary, ["run", job.path])
        same = server_snapshot(ms.url, keys) == reference
        says = "re-run the same command to resume" in out
        check(seconds < 12 and p.returncode == 128 + sig and says and vcode == 0 and code2 == 0 and same, f"signal {sig.name}: {out[-300:]}")
        lines.append(f"| {sig.name} | {seconds:.2f} | {p.returncode} | {'yes' if says else 'NO'} | {done} | "
                     f"{'all match' if vcode == 0 else 'DIFFER'} | {code2} | {'yes' if same else 'NO'} |")
    ms.stop()
    lines.append("")


def fault_trials(binary, work, archives, tree, lines):
    lines += ["## 2. Faults", "",
              "One unit each (BTCUSDT 1h 2024-01 and friends), the fault injected by the fixture archive server or the "
              "MarketStore test server, then the same command again.", "",
              "| fault | outcome | exit code | message (excerpt) | re-run exit |", "|---|---|---|---|---|"]
    path = "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip"
    cases = [
        ("HTTP 500 x2", dict(path=path, fault=500, times=2), None),
        ("HTTP 503 x2", dict(path=path, fault=503, times=2), None),
        ("HTTP 429, Retry-After 1", dict(path=path, fault=429, times=1, retry_after=1), None),
        ("HTTP 418, Retry-After 1", dict(path=path, fault=418, times=1, retry_after=1), None),
        ("connection reset x2", dict(path=path, fault="reset", times=2), None),
        ("truncated body x2", dict(path=path, fault="truncate", times=2), None),
        ("stalled body (low-speed timeout)", dict(path=path, fault="stall", times=1, seconds=120), None),
        ("HTTP 500 x20 (retries exhausted)", dict(path=path, fault=500, times=20), None),
        ("CHECKSUM does not match", dict(path=path, fault="wrong_checksum", times=1), None),
        ("CHECKSUM missing", dict(path=path, fault="missing_checksum", times=1), None),
        ("HTTP 403", dict(path=path, fault=403, times=10), None),
        ("HTTP 404: a month not published", dict(path=path, fault=404, times=1), None),
        ("MarketStore refuses the write", None, dict(fail_write=1, error="injected: disk full")),
        ("MarketStore closes the connection x2", None, dict(drop_write=1)),
        ("MarketStore down at start", None, "down"),
        ("MarketStore down for 3 s mid-run", None, "down_later"),
    ]
    for label, archive_fault, ms_fault in cases:
        ms = Server("marketstore_server.py")
        job = Job(work, archives.base, ms.url, "fault", ["BTCUSDT"], ["2024-01"], chunk_rows=100)
        job.reset()
        archives.control(reset=True)
        if archive_fault:
            archives.control(**archive_fault)
        if isinstance(ms_fault, dict):
            ms.control(**ms_fault)
            if "drop_write" in ms_fault:
                ms.control(drop_write=2)
        if ms_fault == "down":
            ms.control(down_for=2)
        t0 = time.time()
        if ms_fault == "down_later":
            # Writes of 100 rows, 0.2 s each; the server goes away for 3 s after the second.
            for n in range(1, 10):
                ms.control(delay_write=n, delay=0.2)
            p = start(binary, ["run", job.path])
            time.sleep(0.8)
            ms.control(down_for=3)
            out, _ = p.communicate(timeout=120)
            code = p.returncode
        else:
            code, out = run(binary, ["run", job.path])
        units = job.manifest_units()
        status = ",".join(sorted({u["status"] for u in units.values()})) or "nothing recorded"
        message = ""
        for line in out.splitlines():
            if "error" in line.lower() or "failed:" in line or "WARNING" in line:
                message = line.strip()
                message = ("..." + message[-150:]) if len(message) > 150 else message
                break
        if ms_fault == "down":
            time.sleep(2.5)
        archives.control(reset=True)  # the fault is over; the same command again
        code2, out2 = run(binary, ["run", job.path])
        if code == 0 and status == "not_published":
            outcome = "recorded as not published (not an error); the re-run imports it"
        else:
            outcome = None
        outcome = outcome or {0: "retried and succeeded", 1: "unit failed with a clear error",
                   3: "job stopped: target unreachable or refused everything"}.get(code, f"exit {code}")
        done_after = all(u["status"] == "done" for u in job.manifest_units().values()) and job.manifest_units()
        check(code2 == 0 and bool(done_after), f"re-run after {label}: {out2[-300:]}")
        lines.append(f"| {label} | {outcome} ({status}, {time.time() - t0:.1f} s) | {code} | {message.replace('|', '/')} | {code2} |")
        ms.stop()
    lines.append("")


def hostile_inputs(binary, work, lines):
    lines += ["## 3. Hostile input", "", "Each input is refused with a specific error; none crashes the process.", "",
              "| input | exit code | error (excerpt) |", "|---|---|---|"]
    base = "1704067200000,42283.58000000,42312.65000000,42277.42000000,42304.80000000,1053.85857000,1704067259999,44583276.03213600,12103,84.30869000,3566662.26871200,0"
    good = "\n".join(base.replace("1704067200000", str(1704067200000 + 60000 * i)).replace("1704067259999", str(1704067259999 + 60000 * i)) for i in range(5)) + "\n"

    def zip_of(name, text, **kw):
        p = os.path.join(work, name)
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(name[:-4] + ".csv", text)
            for extra, content in kw.get("extra", {}).items():
                z.writestr(extra, content)
        return p

    def corrupt(p, offset, value):
        b = bytearray(open(p, "rb").read())
        b[offset] = value
        open(p, "wb").write(bytes(b))
        return p

    cases = []
    p = zip_of("BTCUSDT-1m-2024-01-01.zip", good)
    raw = open(p, "rb").read()
    cases.append(("bad CRC", corrupt(zip_of("BTCUSDT-1m-2024-01-02.zip", good), raw.index(b"PK\x01\x02") + 16, 0)))
    t = os.path.join(work, "BTCUSDT-1m-2024-01-03.zip")
    open(t, "wb").write(raw[: len(raw) // 2])
    cases.append(("truncated zip", t))
    cases.append(("wrong method", corrupt(corrupt(zip_of("BTCUSDT-1m-2024-01-04.zip", good), 8, 12), raw.index(b"PK\x01\x02") + 10, 12)))
    cases.append(("zip bomb (100 MB of rows in a daily 1m archive)", zip_of("BTCUSDT-1m-2024-01-05.zip", (base + "\n") * 700000)))
    cases.append(("two members", zip_of("BTCUSDT-1m-2024-01-06.zip", good, extra={"README.txt": "x"})))
    cases.append(("malformed number", zip_of("BTCUSDT-1m-2024-01-07.zip", good.replace("42312.65000000", "42x312.65", 1))))
    cases.append(("wrong column count", zip_of("BTCUSDT-1m-2024-01-08.zip", good.replace(",0\n", ",0,9\n", 1))))
    cases.append(("non-UTF8 bytes", zip_of("BTCUSDT-1m-2024-01-09.zip", good.replace("42277.42000000", "\udcff\udcfe", 1).encode("utf-8", "surrogateescape").decode("latin-1"))))
    cases.append(("huge line", zip_of("BTCUSDT-1m-2024-01-10.zip", good + "9" * 100000 + "\n")))
    cases.append(("timestamp out of range (14 digits)", zip_of("BTCUSDT-1m-2024-01-11.zip", good.replace("1704067200000", "17040672000000", 1))))
    cases.append(("mixed ms/us", zip_of("BTCUSDT-1m-2024-01-12.zip", good + base.replace("1704067200000", "1704067500000000").replace("1704067259999", "1704067559999999") + "\n")))
    for label, path in cases:
        code, out = run(binary, ["inspect", path])
        line = next((l for l in out.splitlines() if "rror" in l), out.strip()[:150])
        check(code == 1 and "Fatal" not in out, f"hostile {label}: {out[-200:]}")
        lines.append(f"| {label} | {code} | {line[:160].replace('|', '/')} |")
    jobs = [("unknown key", "colour: blue\n"), ("bad date", "from: 2024-13\n"), ("symbol with a path separator", "symbols: [../../etc]\n"),
            ("lower-case symbol", "symbols: [btcusdt]\n")]
    template = "name: hostile\nmarket: spot\nsymbols: [BTCUSDT]\nintervals: [1h]\nfrom: 2024-01\nto: 2024-02\ntarget:\n  directory: x\n"
    for label, line_text in jobs:
        key = line_text.split(":")[0]
        text = "\n".join(l for l in template.splitlines() if not l.startswith(key + ":")) + "\n" + line_text
        p = os.path.join(work, "hostile.yml")
        open(p, "w").write(text)
        code, out = run(binary, ["run", p])
        msg = next((l for l in out.splitlines() if "error" in l), out.strip()[:150])
        check(code == 2, f"hostile job {label}: {out[-200:]}")
        lines.append(f"| job file: {label} | {code} | {msg[:160].replace('|', '/')} |")
    lines.append("")


def load_trial(binary, work, archives, tree, lines):
    symbols = [f"S{i:02d}USDT" for i in range(10)]
    months = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13)][:20]
    for s in symbols:
        for mo in months:
            y, m = map(int, mo.split("-"))
            gen_archives.write_archive(os.path.join(tree, f"data/spot/monthly/klines/{s}/1h"), s, "1h", y, m)
    publish_futures(tree, symbols)
    ms = Server("marketstore_server.py", "--sink")
    job = Job(work, archives.base, ms.url, "load", symbols, months, chunk_rows=50000, downloads=4)
    job.reset()
    t0 = time.time()
    code, out = run(binary, ["run", job.path, "--log-format", "json"])
    seconds = time.time() - t0
    summary = json.loads(out[out.index("{"): out.rindex("}") + 1]) if "{" in out else {}
    rss = summary.get("peak_rss_bytes", 0) / 2**20
    small = Job(work, archives.base, ms.url, "load-small", symbols[:1], months[:2], chunk_rows=50000, downloads=4)
    small.reset()
    code_s, out_s = run(binary, ["run", small.path, "--log-format", "json"])
    rss_small = json.loads(out_s[out_s.index("{"): out_s.rindex("}") + 1]).get("peak_rss_bytes", 0) / 2**20
    check(code == 0 and summary.get("done") == 200 and rss < 150, f"load: exit {code}, {summary.get('done')} done, {rss:.1f} MB")
    lines += ["## 5. Load", "",
              f"A job of {len(symbols)} symbols x {len(months)} months = {len(symbols) * len(months)} units (hourly archives) into the "
              "MarketStore test server in sink mode, against a job of 2 units, peak RSS of the importer (VmHWM):", "",
              "| job | units done | rows | seconds | peak RSS MB |", "|---|---|---|---|---|",
              f"| 200 units | {summary.get('done')} | {summary.get('rows')} | {seconds:.1f} | {rss:.1f} |",
              f"| 2 units | 2 | - | - | {rss_small:.1f} |", "",
              "Bound: the pipeline's queues hold at most 2 x downloads archives and 4 decoded pieces of at most chunk_rows rows, "
              "whatever the number of units; the stated limit is 150 MB.", ""]
    ms.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="reliability-")
    tree = os.path.join(work, "tree")
    symbols, months = ["BTCUSDT", "ETHUSDT", "BNBUSDT"], ["2024-01", "2024-02", "2024-03", "2024-04"]
    for s in symbols:
        for mo in months:
            y, m = map(int, mo.split("-"))
            gen_archives.write_archive(os.path.join(tree, f"data/spot/monthly/klines/{s}/1h"), s, "1h", y, m)
    publish_futures(tree, symbols)
    publish_trades(tree, symbols)
    archives = Server("archive_server.py", tree, "--page-size", "50")
    lines = ["# Reliability (`make reliability`)", "",
             f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `Tests/reliability/reliability.py` "
             f"(seed {a.seed}, {a.trials} crash trials per target) on {os.cpu_count()} cores. Every row below is a run of the real "
             "binance-import binary against the project's fixture archive server and MarketStore test server.", ""]
    try:
        crash_trials(binary, work, archives, symbols, months, a.trials, rng, lines)
        signal_trials(binary, work, archives, symbols, months, rng, lines)
        fault_trials(binary, work, archives, tree, lines)
        hostile_inputs(binary, work, lines)
        lines += ["## 4. Fuzzing", "",
                  "`make fuzz` feeds 1,000,000 seeded inputs each to the CSV decoder, the zip reader and the msgpack decoder "
                  "(FuzzTests, release build) and writes docs/fuzz.md; `make test` runs 20,000 each. Every input decoded or was "
                  "refused with the decoder's own error (no crash, no hang, bounded memory). The last `make fuzz`:", ""]
        fuzz = os.path.join(ROOT, "docs/fuzz.md")
        if os.path.exists(fuzz):
            lines += ["    " + l for l in open(fuzz).read().splitlines() if l.startswith("FUZZ")] + [""]
        load_trial(binary, work, archives, tree, lines)
    finally:
        archives.stop()
        shutil.rmtree(work, ignore_errors=True)
    lines += ["## Result", "", "all trials ended as required" if not failures else "FAILURES:\n" + "\n".join("- " + f for f in failures), ""]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    open(a.out, "w").write("\n".join(lines))
    print("\n".join(lines))
    print("reliability: %d passed, %d failed" % (0 if failures else 1, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
