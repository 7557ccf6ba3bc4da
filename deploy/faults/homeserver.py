"""One homeserver in split mode: each service its own `mzchatd <service>` process (some with
several replicas), all over the suite's PostgreSQL (schemas `<name>_<service>`) and NATS (bus
prefix `f<name>`), behind a router process (`mzchat-loadtest faults router`) that is the public
origin and the internal address every service calls the others through."""

import os

from infra import Fatal, Proc, free_port, http_get, log, wait_for

SERVICES = ("identity", "guild", "federation-sync", "push-relay", "media")
SCHEMAS = ("identity", "guild", "federation", "push", "media")


class Process(Proc):
    def __init__(self, name, service, args, run_dir, grpc_port, admin_port):
        # Plain text logs (no colour codes in the files).
        super().__init__(name, args, run_dir, env={**os.environ, "NO_COLOR": "1"})
        self.service = service
        self.grpc_port = grpc_port
        self.admin_port = admin_port

    def ready(self):
        return http_get(f"http://127.0.0.1:{self.admin_port}/readyz", timeout=2)[0] == 200


class Homeserver:
    def __init__(self, name, run_dir, mzchatd, loadtest, pg, nats, replicas, origin_port=None):
        self.name = name
        self.run_dir = run_dir
        self.mzchatd = mzchatd
        self.pg = pg
        self.nats = nats
        self.public_port = free_port()
        self.internal_port = free_port()
        # The origin other servers and clients use; B's is the fault proxy in front of it.
        self.origin = f"http://127.0.0.1:{origin_port or self.public_port}"
        self.internal = f"http://127.0.0.1:{self.internal_port}"
        self.schema_prefix = f"{name}_"
        self.bus_prefix = f"f{name}"
        self.media_assets_port = free_port()
        self.processes = []
        for service in SERVICES:
            for i in range(replicas.get(service, 1)):
                grpc, admin = free_port(), free_port()
                assets = self.media_assets_port if service == "media" else free_port()
                pname = f"{name}-{service}-{i + 1}"
                args = [mzchatd, service, *self.flags(pname), "--listen", f"127.0.0.1:{grpc}",
                        "--admin-listen", f"127.0.0.1:{admin}", "--assets-listen", f"127.0.0.1:{assets}"]
                self.processes.append(Process(pname, service, args, run_dir, grpc, admin))
        backends = []
        for p in self.processes:
            backends += ["--backend", f"{p.service}=127.0.0.1:{p.grpc_port}/127.0.0.1:{p.admin_port}"]
        self.router = Proc(
            f"{name}-router",
            [loadtest, "faults", "router", "--listen", f"127.0.0.1:{self.public_port}",
             "--internal-listen", f"127.0.0.1:{self.internal_port}", *backends],
            run_dir,
        )

    def flags(self, pname):
        return [
            "--insecure-dev",
            "--origin", self.origin,
            "--assets-origin", f"http://127.0.0.1:{self.media_assets_port}",
            "--data-dir", os.path.join(self.run_dir, "data", pname),
            "--database-url", self.pg.url,
            "--database-schema-prefix", self.schema_prefix,
            "--database-max-connections", "4",
            "--nats-url", self.nats.url,
            "--bus-prefix", self.bus_prefix,
            "--internal-token", f"faults-{self.name}-internal-token",
            "--rate-limit", "all=off",
            "--guild-internal-url", self.internal,
            "--federation-internal-url", self.internal,
            "--identity-internal-url", self.internal,
            "--identity-url", self.internal,
            "--media-internal-url", self.internal,
            "--push-allow-endpoint-hosts", "127.0.0.1",
            "--media-store", "disk",
            "--media-max-open-uploads", "1000",
            "--shutdown-grace-secs", "2",
        ]

    def migrate(self):
        migrate = Proc(f"{self.name}-migrate", [self.mzchatd, "migrate", *self.flags(f"{self.name}-migrate")],
                       self.run_dir)
        migrate.start()
        code = migrate.proc.wait(120)
        if code != 0:
            raise RuntimeError(f"migrations of {self.name} exited with {code}; see {migrate.log_path}")

    def start(self):
        self.router.start()
        for p in self.processes:
            p.start()

    def wait_ready(self, timeout=90):
        for p in self.processes:
            def ready(p=p):
                if not p.alive():
                    raise Fatal(f"{p.name} exited with {p.exit_code()}; see {p.log_path}")
                return p.ready()
            wait_for(f"{p.name} ready", ready, timeout)
        wait_for(f"{self.name}'s router", lambda: _listens(self.public_port), 30)
        log(f"homeserver {self.name.upper()} ready at {self.origin}: "
            + ", ".join(p.name for p in self.processes))

    def process(self, name):
        return next(p for p in self.processes if p.name == name)

    def stop(self):
        for p in self.processes:
            p.stop(grace=5)
        self.router.stop(grace=2)


def _listens(port):
    import socket
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
