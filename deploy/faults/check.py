"""What the fault suite checks once the load is over and the system has settled, from the
databases (SQL on each service's schema), JetStream (the monitoring endpoint and stream info)
and each process's /readyz:
- every write the load generator saw acknowledged is stored exactly once (lost = 0,
  duplicated = 0);
- every event reached its consumers (durable consumers with nothing pending and their ack
  floor at the last message they take, outbox tables empty, every mention a push delivery that
  was delivered or dropped with a reason);
- every federation job completed or is in the dead-letter list with a reason;
- every process is alive and ready, having recovered by itself."""

import csv
import json
import os
import time

from homeserver import SCHEMAS
from infra import log


def _nats_match(pattern, subject):
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


class Checker:
    def __init__(self, pg, nats, homeservers, acked_path, receiver, run_dir):
        self.pg = pg
        self.nats = nats
        self.servers = homeservers  # {"a": Homeserver, "b": Homeserver}
        self.acked_path = acked_path
        self.receiver = receiver
        self.run_dir = run_dir
        self.failures = []
        self.lines = []

    # ---- what is still in flight ----

    def _tables(self, schema):
        return {r[0] for r in self.pg.psql(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'")}

    def backlog(self):
        """Everything not yet settled, by place (empty when the system is quiet)."""
        left = {}
        for name, hs in self.servers.items():
            for schema in SCHEMAS:
                full = f"{hs.schema_prefix}{schema}"
                if "outbox" in self._tables(full):
                    n = self.pg.scalar(f'SELECT count(*) FROM "{full}".outbox')
                    if n:
                        left[f"{full}.outbox"] = n
            fed = f"{hs.schema_prefix}federation"
            n = self.pg.scalar(f"SELECT count(*) FROM \"{fed}\".jobs WHERE state NOT IN ('done', 'dead')")
            if n:
                left[f"{fed}.jobs waiting"] = n
            push = f"{hs.schema_prefix}push"
            n = self.pg.scalar(f"SELECT count(*) FROM \"{push}\".deliveries WHERE state = 'pending'")
            if n:
                left[f"{push}.deliveries pending"] = n
            n = self.pg.scalar(f'SELECT count(*) FROM "{push}".fanouts')
            if n:
                left[f"{push}.fanouts"] = n
        for stream in self._streams():
            if stream["config"].get("retention") == "workqueue" and stream["state"]["messages"]:
                left[f"stream {stream['name']}"] = stream["state"]["messages"]
            for c in stream.get("consumer_detail") or []:
                n = c["num_pending"] + c["num_ack_pending"]
                if n:
                    left[f"consumer {stream['name']}/{c['name']}"] = n
        return left

    def _streams(self):
        prefixes = tuple(f"{hs.bus_prefix.upper()}_" for hs in self.servers.values())
        out = []
        for account in self.nats.jsz().get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                if stream["name"].startswith(prefixes):
                    out.append(stream)
        return out

    def drain(self, timeout):
        started = time.monotonic()
        last = None
        while True:
            try:
                left = self.backlog()
            except Exception as e:  # noqa: BLE001
                left = {"(cannot read)": str(e)}
            if not left:
                log(f"settled {time.monotonic() - started:.0f} s after the load")
                return True
            if left != last:
                log("waiting for: " + ", ".join(f"{k} {v}" for k, v in sorted(left.items())))
                last = left
            if time.monotonic() - started > timeout:
                log(f"not settled within {timeout} s")
                return False
            time.sleep(2)

    # ---- the checks ----

    def fail(self, text):
        self.failures.append(text)

    def say(self, text):
        self.lines.append(text)

    def _copy(self, name, rows):
        path = os.path.join(self.run_dir, f"{name}.csv")
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(rows)
        return path

    def _query_with(self, table, columns, rows, sql):
        path = self._copy(table, rows)
        cols = ", ".join(f"{c} text" for c in columns)
        script = (f"CREATE TEMP TABLE {table} ({cols});\n"
                  f"\\copy {table} FROM '{path}' WITH (FORMAT csv)\n{sql};\n")
        return self.pg.psql(None, input_text=script)

    def writes(self, acked):
        totals = {"acked": 0, "found": 0, "lost": 0, "duplicated": 0, "unacked_stored": 0}
        by_kind = {}
        for server, hs in self.servers.items():
            g, m = f'"{hs.schema_prefix}guild"', f'"{hs.schema_prefix}media"'
            msgs = [(w["id"], w["nonce"]) for w in acked if w["kind"] == "message" and w["server"] == server]
            joins = [(w["guild"], w["user"]) for w in acked if w["kind"] == "join" and w["server"] == server]
            files = [(w["file_id"], w["name"]) for w in acked if w["kind"] == "upload" and w["server"] == server]
            checks = [
                ("messages", msgs, ("id", "nonce"), f"""
                    WITH copies AS (SELECT content, count(*) AS n FROM {g}.messages
                                    WHERE content LIKE 'faults %' GROUP BY content)
                    SELECT count(*),
                      count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {g}.messages m WHERE m.id = a.id
                                       AND m.nonce = a.nonce AND m.content = 'faults ' || a.nonce)),
                      coalesce(sum(c.n - 1) FILTER (WHERE c.n > 1), 0),
                      (SELECT count(*) FROM copies WHERE content NOT IN
                         (SELECT 'faults ' || nonce FROM acked_messages)),
                      (SELECT string_agg(id, ' ') FROM (SELECT id FROM acked_messages x WHERE NOT EXISTS
                         (SELECT 1 FROM {g}.messages m WHERE m.id = x.id) LIMIT 10) l)
                    FROM acked_messages a LEFT JOIN copies c ON c.content = 'faults ' || a.nonce"""),
                ("joins", joins, ("guild", "uid"), f"""
                    WITH copies AS (SELECT guild_id, user_id, count(*) AS n FROM {g}.members
                                    GROUP BY 1, 2)
                    SELECT count(*), count(c.n), coalesce(sum(c.n - 1) FILTER (WHERE c.n > 1), 0), 0,
                      (SELECT string_agg(uid, ' ') FROM (SELECT uid FROM acked_joins x WHERE NOT EXISTS
                         (SELECT 1 FROM {g}.members m WHERE m.guild_id = x.guild AND m.user_id = x.uid)
                         LIMIT 10) l)
                    FROM acked_joins a LEFT JOIN copies c ON c.guild_id = a.guild AND c.user_id = a.uid"""),
                ("uploads", files, ("file_id", "name"), f"""
                    WITH copies AS (SELECT file_name, count(*) AS n FROM {m}.files
                                    WHERE file_name LIKE 'faults-%' AND deleted_at IS NULL GROUP BY 1)
                    SELECT count(*),
                      count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {m}.files f WHERE f.file_id = a.file_id
                                       AND f.file_name = a.name AND f.deleted_at IS NULL)),
                      coalesce(sum(c.n - 1) FILTER (WHERE c.n > 1), 0),
                      (SELECT count(*) FROM copies WHERE file_name NOT IN (SELECT name FROM acked_uploads)),
                      (SELECT string_agg(file_id, ' ') FROM (SELECT file_id FROM acked_uploads x WHERE NOT
                         EXISTS (SELECT 1 FROM {m}.files f WHERE f.file_id = x.file_id) LIMIT 10) l)
                    FROM acked_uploads a LEFT JOIN copies c ON c.file_name = a.name"""),
            ]
            for kind, rows, cols, sql in checks:
                if not rows:
                    continue
                r = self._query_with(f"acked_{kind}", cols, rows, sql)[0]
                acked_n, found, dup, extra = (int(x or 0) for x in r[:4])
                lost = acked_n - found
                k = by_kind.setdefault(kind, [0, 0, 0, 0, 0])
                for i, v in enumerate((acked_n, found, lost, dup, extra)):
                    k[i] += v
                if lost:
                    self.fail(f"{lost} acknowledged {kind} on {server.upper()} are missing, e.g. {r[4]}")
                if dup:
                    self.fail(f"{dup} extra copies of acknowledged {kind} on {server.upper()}")
        for kind, (a, f, l, d, e) in by_kind.items():
            totals["acked"] += a
            totals["found"] += f
            totals["lost"] += l
            totals["duplicated"] += d
            totals["unacked_stored"] += e
            self.say(f"  {kind:<9} acknowledged {a:>6}  found {f:>6}  lost {l}  duplicated {d}"
                     f"  (stored without an acknowledgement: {e})")
        return totals

    def pushes(self, acked, homes):
        """Each mention in an acknowledged message is a delivery at the user's home."""
        pairs = [(w["id"], u, homes.get(u, "?")) for w in acked
                 if w["kind"] == "message" and w["server"] == "a" for u in w.get("mentions") or []]
        states = {}
        missing = 0
        a_origin = self.servers["a"].origin
        for home, hs in self.servers.items():
            # A push relayed to the user's home is keyed there by "<guild server>/<message id>".
            rows = [(mid if home == "a" else f"{a_origin}/{mid}", uid) for mid, uid, h in pairs if h == home]
            p = f'"{hs.schema_prefix}push"'
            if rows:
                r = self._query_with("mentions", ("mid", "uid"), rows, f"""
                    SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {p}.deliveries d
                        WHERE d.message_id = a.mid AND d.user_id = a.uid)) FROM mentions a""")
                missing += int(r[0][0])
            for state, n, blank in self.pg.psql(
                    f"SELECT state, count(*), count(*) FILTER (WHERE coalesce(last_result, '') = '') "
                    f"FROM {p}.deliveries GROUP BY 1"):
                states[state] = states.get(state, 0) + int(n)
                if state == "dropped" and int(blank):
                    self.fail(f"{blank} push deliveries on {home.upper()} dropped without a reason")
        relay_dead = sum(self.pg.scalar(
            f"SELECT count(*) FROM \"{hs.schema_prefix}federation\".jobs WHERE state = 'dead' "
            f"AND kind LIKE '%push%'") for hs in self.servers.values())
        if states.get("pending"):
            self.fail(f"{states['pending']} push deliveries still pending")
        if missing > relay_dead:
            self.fail(f"{missing} mentions have no push delivery at the user's home "
                      f"({relay_dead} relays dead-lettered)")
        got = self.receiver.stats()
        self.say(f"  pushes: {len(pairs)} mentions in acknowledged messages; deliveries "
                 + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
                 + f"; without a delivery {missing} (relays dead-lettered {relay_dead}); "
                 f"the distributor received {got['pushes']} ({got['distinct']} distinct, "
                 f"{got['repeated']} repeated)")
        return states

    def events(self):
        published = consumed = 0
        for stream in sorted(self._streams(), key=lambda s: s["name"]):
            state = stream["state"]
            workqueue = stream["config"].get("retention") == "workqueue"
            published += state["last_seq"]
            for c in stream.get("consumer_detail") or []:
                filt = c["config"].get("filter_subject") or ">"
                # Nothing matching its filter left to deliver, nothing delivered unacknowledged;
                # a consumer of the whole stream has its ack floor at the stream's last message.
                ok = c["num_pending"] == 0 and c["num_ack_pending"] == 0
                floor = c["ack_floor"]["stream_seq"]
                whole = workqueue or all(_nats_match(filt, s) for s in stream["config"]["subjects"])
                if whole:
                    ok = ok and floor == state["last_seq"]
                if workqueue:
                    took = state["last_seq"] - state["messages"]
                else:
                    info = self.nats.request(f"$JS.API.STREAM.INFO.{stream['name']}",
                                             {"subjects_filter": filt})
                    took = sum((info.get("state", {}).get("subjects") or {}).values())
                consumed += took
                self.say(f"  {stream['name']:<28} {c['name']:<28} took {took:>6}  ack floor {floor:>6}"
                         f"  stream last {state['last_seq']:>6}  pending {c['num_pending']}"
                         f"  unacked {c['num_ack_pending']}  redelivered {c['num_redelivered']}"
                         + ("" if ok else "  <- NOT CAUGHT UP"))
                if not ok:
                    self.fail(f"consumer {stream['name']}/{c['name']} did not take every event")
            if workqueue and state["messages"]:
                self.fail(f"{state['messages']} jobs left in {stream['name']}")
        for name, hs in self.servers.items():
            for schema in SCHEMAS:
                full = f"{hs.schema_prefix}{schema}"
                if "outbox" in self._tables(full):
                    n = self.pg.scalar(f'SELECT count(*) FROM "{full}".outbox')
                    if n:
                        self.fail(f"{n} events never left {full}.outbox")
        return published, consumed

    def federation(self):
        done = dead = 0
        for name, hs in self.servers.items():
            fed = f'"{hs.schema_prefix}federation"'
            rows = self.pg.psql(f"SELECT state, kind, count(*) FROM {fed}.jobs GROUP BY 1, 2 ORDER BY 1, 2")
            per = ", ".join(f"{kind} {state} {n}" for state, kind, n in rows) or "none"
            self.say(f"  federation jobs of {name.upper()}: {per}")
            for state, _, n in rows:
                if state == "done":
                    done += int(n)
                elif state == "dead":
                    dead += int(n)
                else:
                    self.fail(f"{n} federation jobs of {name.upper()} still {state}")
            unlisted = self.pg.scalar(
                f"SELECT count(*) FROM {fed}.jobs j WHERE state = 'dead' AND NOT EXISTS "
                f"(SELECT 1 FROM {fed}.dead_letters d WHERE d.job_id = j.id AND d.last_error <> '')")
            if unlisted:
                self.fail(f"{unlisted} dead federation jobs of {name.upper()} without a dead letter and reason")
            for reason, n in self.pg.psql(
                    f"SELECT left(last_error, 160), count(*) FROM {fed}.dead_letters GROUP BY 1"):
                self.say(f"    dead letter x{n}: {reason}")
        return done, dead

    def after_faults(self, acked, load_started_at_s, last_fault_s):
        """Writes of every kind were acknowledged again after the last fault ended."""
        since = load_started_at_s + last_fault_s + 5
        kinds = (("message", "a"), ("message", "b"), ("join", "a"), ("upload", "a"))
        counts = {k: sum(1 for w in acked if (w["kind"], w["server"]) == k and w["at_s"] >= since)
                  for k in kinds}
        self.say(f"  acknowledged from 5 s after the last fault on: "
                 + ", ".join(f"{kind}s on {server.upper()} {n}" for (kind, server), n in counts.items()))
        for (kind, server), n in counts.items():
            if n == 0:
                self.fail(f"no {kind} on {server.upper()} was acknowledged after the last fault")

    def recovery(self, restarted, left_dead):
        not_ready = []
        deadline = time.monotonic() + 30
        for hs in self.servers.values():
            for p in hs.processes:
                if p.name in left_dead:
                    continue
                while not (p.alive() and p.ready()) and p.alive() and time.monotonic() < deadline:
                    time.sleep(1)
                if not p.alive():
                    not_ready.append(f"{p.name} exited ({p.exit_code()})")
                elif not p.ready():
                    not_ready.append(f"{p.name} not ready")
        total = sum(len(hs.processes) for hs in self.servers.values()) - len(left_dead)
        self.say(f"  processes ready: {total - len(not_ready)}/{total}; restarted by the suite: "
                 + (", ".join(restarted) or "none") + "; killed and left dead: "
                 + (", ".join(left_dead) or "none"))
        for item in not_ready:
            self.fail(f"did not recover by itself: {item}")

    def run(self, restarted, left_dead, last_fault_s):
        with open(self.acked_path) as f:
            summary = json.load(f)
        acked = summary["writes"]
        self.say("writes (load generator's acknowledged writes vs. the databases):")
        totals = self.writes(acked)
        self.say("events (JetStream durable consumers):")
        published, consumed = self.events()
        self.say("pushes:")
        self.pushes(acked, summary["setup"]["homes"])
        self.say("federation:")
        done, dead = self.federation()
        self.say("recovery:")
        self.after_faults(acked, summary["setup"]["load_started_at_s"], last_fault_s)
        self.recovery(restarted, left_dead)
        counts = summary["counts"]
        self.say("load generator: " + "; ".join(
            f"{k}: {v['started']} started, {v['calls']} calls, {v['acked']} acknowledged, "
            f"{v['failed']} gave up, {v['skipped']} skipped" for k, v in sorted(counts.items())))
        self.say("")
        self.say(f"writes acknowledged: {totals['acked']}")
        self.say(f"writes found:        {totals['found']}")
        self.say(f"writes lost:         {totals['lost']}")
        self.say(f"writes duplicated:   {totals['duplicated']}")
        self.say(f"events published:    {published}")
        self.say(f"events consumed:     {consumed}")
        self.say(f"federation jobs completed:     {done}")
        self.say(f"federation jobs dead-lettered: {dead}")
        if totals["acked"] == 0:
            self.fail("the load generator had no write acknowledged")
        return not self.failures and totals["lost"] == 0 and totals["duplicated"] == 0
