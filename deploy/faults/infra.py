"""The real parts the fault suite runs, all its own: a PostgreSQL cluster (initdb + pg_ctl in
the run directory, on a free port), a NATS server with JetStream (its own store, client and
monitoring ports), and processes (mzchatd services, routers) with their logs in the run
directory. Nothing here touches the machine's own PostgreSQL or NATS."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

_given_ports = set()


def free_port():
    """A loopback port nothing listens on, never handed out twice in a run."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port


def log(text):
    print(f"[faults {time.strftime('%H:%M:%S')}] {text}", flush=True)


class Fatal(Exception):
    """A failure waiting cannot fix (a process exited)."""


def wait_for(what, check, timeout, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Fatal:
            raise
        except Exception:  # noqa: BLE001 - anything else means "not yet"
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(every)


def http_get(url, timeout=2.0):
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception:  # noqa: BLE001
        return 0, b""


class Postgres:
    """A throw-away PostgreSQL 15 cluster. As root, its commands run as the postgres user
    (initdb refuses root)."""

    def __init__(self, run_dir, bin_dir):
        self.bin = bin_dir
        self.dir = os.path.join(run_dir, "pgdata")
        self.sock = os.path.join(run_dir, "pgsock")
        self.log_path = os.path.join(run_dir, "logs", "postgres.log")
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, check=True):
        done = subprocess.run(
            [os.path.join(self.bin, args[0]), *args[1:]],
            user=self.user,
            cwd=os.path.dirname(self.dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} exited with {done.returncode}: {done.stdout.strip()}")
        return done

    def init(self):
        os.makedirs(self.sock, exist_ok=True)
        open(self.log_path, "a").close()
        for path in (self.sock, self.log_path):
            if self.user:
                shutil.chown(path, self.user)
        os.makedirs(self.dir, mode=0o700)
        if self.user:
            # The run directory must let the postgres user in to its own directories.
            os.chmod(os.path.dirname(self.dir), 0o755)
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", self.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sock}'\nmax_connections = 200\n"
                "shared_buffers = 64MB\n"
            )
        self.start()

    def start(self):
        self._run("pg_ctl", "-D", self.dir, "-l", self.log_path, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        return self._run("pg_ctl", "-D", self.dir, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def psql(self, sql, *, input_text=None):
        """Rows of `sql` as lists of strings (tab-separated, unaligned)."""
        out = subprocess.run(
            [os.path.join(self.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", sql]
            if input_text is None else
            [os.path.join(self.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-f", "-"],
            input=input_text,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def scalar(self, sql):
        rows = self.psql(sql)
        return int(rows[0][0]) if rows and rows[0][0] != "" else 0


class Nats:
    def __init__(self, run_dir, binary):
        self.binary = binary
        self.store = os.path.join(run_dir, "nats")
        self.port = free_port()
        self.monitor_port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log_path = os.path.join(run_dir, "logs", "nats.log")
        self.proc = None

    def start(self):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port),
             "-js", "-sd", self.store],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for("NATS", lambda: http_get(self.monitor("healthz"))[0] == 200, 20)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def monitor(self, path):
        return f"http://127.0.0.1:{self.monitor_port}/{path}"

    def jsz(self):
        status, body = http_get(self.monitor("jsz?accounts=true&streams=true&consumers=true&config=true"), 5)
        if status != 200:
            raise RuntimeError(f"NATS monitoring answered {status}")
        return json.loads(body)

    def request(self, subject, payload, timeout=5.0):
        """One request over the NATS protocol (no client library): the reply's payload."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            f = s.makefile("rb")
            f.readline()  # INFO
            data = json.dumps(payload).encode()
            s.sendall(
                b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\n'
                b"SUB _INBOX.faults 1\r\n"
                + f"PUB {subject} _INBOX.faults {len(data)}\r\n".encode() + data + b"\r\n"
            )
            while True:
                line = f.readline()
                if not line:
                    raise RuntimeError("NATS closed the connection")
                if line.startswith(b"PING"):
                    s.sendall(b"PONG\r\n")
                elif line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    body = f.read(size + 2)[:size]
                    return json.loads(body)
                elif line.startswith(b"-ERR"):
                    raise RuntimeError(line.decode().strip())


class Proc:
    """A process of the suite, its output appended to logs/<name>.log (restarts included)."""

    def __init__(self, name, args, run_dir, env=None):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = os.path.join(run_dir, "logs", f"{name}.log")
        self.proc = None
        self.starts = 0

    def start(self):
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== faults: start {self.name} at {time.strftime('%H:%M:%S')} =====\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(
            self.args, stdout=logf, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        self.starts += 1

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self):
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self, grace=10):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
