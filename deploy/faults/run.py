#!/usr/bin/env python3
"""The fault suite (`make test-faults`; deploy/faults/README.md): two homeservers in split mode
over a PostgreSQL and a NATS of the suite's own, a steady mixed load, and on a timeline:
(1) NATS SIGKILLed and restarted 10 s later, (2) PostgreSQL restarted (fast shutdown, then
start), (3) one guild and one federation-sync replica of A SIGKILLed and restarted 30 s later,
(4) B unreachable from A (refused), then slow (5 s per chunk), then back. Then it waits for the
system to settle and checks that nothing acknowledged was lost or duplicated, every event and
job was handled, and every process recovered by itself. Exits 1 when a check fails.

Python 3.11 standard library only. Logs of every process stay in the run directory."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# No __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check import Checker  # noqa: E402
from homeserver import Homeserver  # noqa: E402
from infra import Nats, Postgres, Proc, free_port, log  # noqa: E402
from netfaults import FaultProxy, PushReceiver  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def find_nats():
    for candidate in (os.environ.get("NATS_SERVER"), shutil.which("nats-server"), "/usr/sbin/nats-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("nats-server not found: `make services-up` installs one, or set NATS_SERVER")


def build(target_dir):
    cargo = os.environ.get("CARGO", "cargo")
    log("building release binaries (cargo build --release -p mzchatd -p mzchat-loadtest)")
    subprocess.run([cargo, "build", "--release", "-p", "mzchatd", "-p", "mzchat-loadtest"],
                   cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target_dir})


class Timeline:
    """The faults, in order, each at a time after the load began; what happened is logged."""

    def __init__(self, args, pg, nats, a, proxy):
        self.args, self.pg, self.nats, self.a, self.proxy = args, pg, nats, a, proxy
        self.restarted = []
        self.left_dead = []
        self.events = []
        self.error = None

    def at(self, start, seconds, what, action):
        wait = start + seconds - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        log(f"t={time.monotonic() - start:5.1f}s fault: {what}")
        self.events.append((round(time.monotonic() - start, 1), what))
        action()

    def run(self, start):
        try:
            self._run(start)
        except Exception as e:  # noqa: BLE001 - reported by the driver
            self.error = e
            log(f"fault timeline failed: {e!r}")

    def _run(self, start):
        guild, fed = self.a.process("a-guild-2"), self.a.process("a-federation-sync-2")
        self.at(start, 20, "SIGKILL NATS", self.nats.kill)
        self.at(start, 30, "NATS started again", self.nats.start)
        self.at(start, 60, "PostgreSQL fast shutdown", lambda: self.pg.stop("fast"))
        self.at(start, 68, "PostgreSQL started again", self.pg.start)
        self.at(start, 95, "SIGKILL a-guild-2 and a-federation-sync-2", lambda: (guild.kill(), fed.kill()))
        if self.args.restart_killed:
            def restart():
                guild.start()
                fed.start()
                self.restarted.extend([guild.name, fed.name])
            self.at(start, 125, "a-guild-2 and a-federation-sync-2 started again", restart)
        else:
            self.left_dead.extend([guild.name, fed.name])
        self.at(start, 145, "B unreachable from A (connections refused)", lambda: self.proxy.set_mode("refuse"))
        self.at(start, 165, "B slow (every chunk delayed 5 s)", lambda: self.proxy.set_mode("delay"))
        self.at(start, 185, "B reachable again", lambda: self.proxy.set_mode("pass"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    parser.add_argument("--seconds", type=int, default=215, help="length of the load (faults end at 185 s)")
    parser.add_argument("--rate", type=float, default=15.0, help="messages per second in A's guild")
    parser.add_argument("--settle-timeout", type=int, default=150,
                        help="how long the system may take to settle after the load")
    parser.add_argument("--leave-killed-dead", dest="restart_killed", action="store_false",
                        help="do not restart the replicas SIGKILLed in fault 3")
    parser.add_argument("--keep", action="store_true", help="keep the databases and NATS store too")
    args = parser.parse_args()
    if args.seconds < 200:
        parser.error("--seconds must leave time after the last fault (185 s): at least 200")

    began = time.monotonic()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/mzchat/target"))
    if not args.no_build:
        build(target)
    mzchatd = os.path.join(target, "release", "mzchatd")
    loadtest = os.path.join(target, "release", "mzchat-loadtest")
    pg_bin = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")

    run_dir = tempfile.mkdtemp(prefix="mzchat-faults-")
    os.makedirs(os.path.join(run_dir, "logs"))
    log(f"run directory (process logs under logs/): {run_dir}")
    pg = Postgres(run_dir, pg_bin)
    nats = Nats(run_dir, find_nats())
    receiver = PushReceiver(free_port())
    servers = {}
    proxy = None
    load = None
    ok = False
    try:
        pg.init()
        nats.start()
        log(f"PostgreSQL on {pg.port}, NATS on {nats.port} (monitoring {nats.monitor_port})")
        receiver.start()
        proxy_port = free_port()
        a = Homeserver("a", run_dir, mzchatd, loadtest, pg, nats,
                       {"guild": 2, "federation-sync": 2})
        b = Homeserver("b", run_dir, mzchatd, loadtest, pg, nats, {}, origin_port=proxy_port)
        servers = {"a": a, "b": b}
        proxy = FaultProxy(proxy_port, b.public_port)
        proxy.start()
        for hs in servers.values():
            hs.migrate()
            hs.start()
        for hs in servers.values():
            hs.wait_ready()

        acked = os.path.join(run_dir, "acked.json")
        load = Proc("load", [loadtest, "faults", "load", "--a", a.origin, "--b", b.origin,
                             "--receiver", f"http://127.0.0.1:{receiver.port}", "--out", acked,
                             "--seconds", str(args.seconds), "--rate", str(args.rate)], run_dir)
        load.start()
        log(f"load generator started (output in {load.log_path})")
        start = None
        while start is None:
            if not load.alive():
                raise RuntimeError(f"the load generator exited during setup; see {load.log_path}")
            with open(load.log_path) as f:
                if "faults load: started" in f.read():
                    start = time.monotonic()
            time.sleep(0.2)
        log("steady load running; faults begin")
        timeline = Timeline(args, pg, nats, a, proxy)
        thread = threading.Thread(target=timeline.run, args=(start,), daemon=True)
        thread.start()
        tail = _Tail(load.log_path, "faults load")
        while load.alive():
            tail.show()
            time.sleep(1)
        tail.show()
        thread.join()
        if load.exit_code() != 0:
            raise RuntimeError(f"the load generator failed ({load.exit_code()}); see {load.log_path}")
        if timeline.error:
            raise RuntimeError(f"the fault timeline failed: {timeline.error!r}")

        checker = Checker(pg, nats, servers, acked, receiver, run_dir)
        settled = checker.drain(args.settle_timeout)
        if not settled:
            checker.fail(f"the system did not settle within {args.settle_timeout} s after the load "
                         "(see the waiting list above)")
        passed = checker.run(timeline.restarted, timeline.left_dead, timeline.events[-1][0])
        print("\n=== fault suite ===", flush=True)
        for when, what in timeline.events:
            print(f"  t={when:6.1f}s  {what}")
        for line in checker.lines:
            print(line)
        for failure in checker.failures:
            print(f"FAILED: {failure}")
        ok = passed and not checker.failures
        print(f"\nfault suite {'PASSED' if ok else 'FAILED'} in {time.monotonic() - began:.0f} s "
              f"(logs: {run_dir}/logs)", flush=True)
    except BaseException as e:
        log(f"fault suite aborted: {e!r}")
        raise
    finally:
        if load and load.alive():
            load.kill()
        for hs in servers.values():
            hs.stop()
        nats.kill()
        pg.stop("immediate")
        if not args.keep:
            for d in ("pgdata", "nats", "data"):
                shutil.rmtree(os.path.join(run_dir, d), ignore_errors=True)
    sys.exit(0 if ok else 1)


class _Tail:
    """Echoes the load generator's progress lines as they come."""

    def __init__(self, path, prefix):
        self.path, self.prefix, self.offset = path, prefix, 0

    def show(self):
        with open(self.path, errors="replace") as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        for line in text.splitlines():
            if line.startswith(self.prefix):
                print(f"  {line}", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
