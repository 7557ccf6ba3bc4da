"""The suite's network parts, each on its own thread:
- FaultProxy: a TCP proxy in front of homeserver B (B's origin is the proxy's port), switched
  between `pass`, `refuse` (listener closed, every open connection cut: connection refused) and
  `delay` (every chunk of bytes, both ways, delivered 5 s after it arrived, order kept).
- PushReceiver: the push distributor the test users registered (POST /up/<who> answers 201),
  with GET /stats for what it received."""

import asyncio
import collections
import http.server
import json
import re
import threading
import time

from infra import log


class FaultProxy:
    def __init__(self, listen_port, upstream_port, delay=5.0):
        self.listen_port = listen_port
        self.upstream_port = upstream_port
        self.delay = delay
        self.mode = "pass"
        self.server = None
        self.transports = set()
        self.loop = asyncio.new_event_loop()
        self.connections = 0
        self.thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    def start(self):
        started = threading.Event()
        self.loop.call_soon(started.set)
        self.thread.start()
        started.wait(5)
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _listen(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)

    def set_mode(self, mode):
        assert mode in ("pass", "refuse", "delay")
        asyncio.run_coroutine_threadsafe(self._set_mode(mode), self.loop).result(10)
        log(f"proxy in front of B: {mode}" + (f" ({self.delay:.0f} s per chunk)" if mode == "delay" else ""))

    async def _set_mode(self, mode):
        before, self.mode = self.mode, mode
        if mode == "refuse":
            if self.server:
                self.server.close()
                self.server = None
            for transport in list(self.transports):
                transport.abort()
            self.transports.clear()
        elif before == "refuse":
            await self._listen()

    async def _handle(self, reader, writer):
        if self.mode == "refuse":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pair = (writer.transport, up_writer.transport)
        self.transports.update(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for t in pair:
                t.abort()
                self.transports.discard(t)

    async def _pipe(self, reader, writer):
        """Copies one direction; in delay mode each chunk waits `delay` after its arrival."""
        queue = asyncio.Queue()

        async def read():
            try:
                while True:
                    data = await reader.read(65536)
                    due = time.monotonic() + (self.delay if self.mode == "delay" else 0)
                    await queue.put((due, data))
                    if not data:
                        return
            except (ConnectionError, OSError):
                await queue.put((0, b""))

        async def write():
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data or self.mode == "refuse":
                    writer.transport.abort()
                    return
                writer.write(data)
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    return

        reading = asyncio.ensure_future(read())
        try:
            await write()
        finally:
            reading.cancel()


class PushReceiver:
    """Answers every push 201 and counts them per path and message."""

    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.paths = collections.Counter()
        self.seen = collections.Counter()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                found = re.search(rb'"message_id":"([^"]+)"', body)
                with receiver.lock:
                    receiver.paths[self.path] += 1
                    if found:
                        receiver.seen[(self.path, found.group(1).decode())] += 1
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                body = json.dumps(receiver.stats()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="push-receiver", daemon=True)

    def start(self):
        self.thread.start()

    def stats(self):
        with self.lock:
            return {
                "paths": dict(self.paths),
                "pushes": sum(self.paths.values()),
                "distinct": len(self.seen),
                "repeated": sum(n - 1 for n in self.seen.values() if n > 1),
            }
