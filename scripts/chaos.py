#!/usr/bin/env python3
"""Fault-injection suite of erp-sync (driven by scripts/chaos.sh; Python standard library only).

Each scenario runs on MariaDB -> PostgreSQL and on PostgreSQL -> SQLite with an "ERP writer" inserting,
updating and cancelling rows while erp-sync runs, injects its faults, then stops the writer, lets a last
incremental run catch up and compares both sides through SQL: count, key set, sum and content
(external_id, amount, canonical type, occurred_at as an instant), and that no run is left RUNNING.

Recovery time of an injection: from the injection until the checkpoint (tb_sync_state) moves again, i.e. the
first batch committed after it.

  python3 scripts/chaos.py --bin BIN [--profile full|ci] [--scenarios a,b] [--pairs mariadb-postgresql,...]

Needs the private servers of scripts/chaos.sh (PostgreSQL on $CHAOS_PG_PORT, MariaDB on $CHAOS_MYSQL_PORT),
psql, mariadb, pg_ctl, iptables, mount (tmpfs) and root.
"""
import argparse
import decimal
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

PG_PORT = int(os.environ.get("CHAOS_PG_PORT", "5442"))
PG_DATA = os.environ.get("CHAOS_PG_DATA", "/tmp/erp-sync-chaos-pg")
MY_PORT = int(os.environ.get("CHAOS_MYSQL_PORT", "3316"))
WORK = os.environ.get("CHAOS_WORK", "/tmp/erp-sync-chaos")
PGBIN = "/usr/lib/postgresql/15/bin"
SOURCE = "chaos"
TYPE_MAP = {"venda": "sale", "cancelamento": "cancel", "devolucao": "refund"}

PROFILES = {
    # rows seeded before a scenario, injections per scenario (kill sync, source kill, destination restart, dead
    # destination connection, serve kill, late commits, disk-full cycles), writer statements per second
    "full": dict(rows=200_000, kill_sync=20, source_kill=20, dest_restart=5, dest_idle_kill=5, dest_silent=3,
                 serve_kill=3, late=5, disk_full=3, writer_rate=60),
    "ci": dict(rows=20_000, kill_sync=3, source_kill=3, dest_restart=2, dest_idle_kill=2, dest_silent=1,
               serve_kill=0, late=2, disk_full=1, writer_rate=40),
}
PAIRS = ["mariadb-postgresql", "postgresql-sqlite"]


def log(message):
    print(f"chaos {datetime.now().strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


def run(args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def pg(db, sql):
    """Rows of one psql call on database `db` of the private cluster, as lists of text."""
    out = run([f"{PGBIN}/psql", f"postgres://erp_sync:erp_sync@127.0.0.1:{PG_PORT}/{db}", "-X", "-q", "-At", "-F", "\t",
               "-v", "ON_ERROR_STOP=1", "-c", sql], env={**os.environ, "PGOPTIONS": "--client-min-messages=warning"})
    return [line.split("\t") for line in out.splitlines() if line]


def my(db, sql):
    out = run(["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(MY_PORT), "-u", "erp_sync", "-perp_sync", "-N", "-B",
               *([db] if db else []), "-e", sql])
    return [line.split("\t") for line in out.splitlines() if line]


def instant(text):
    """An instant as ISO text with microseconds (UTC), from either side's text form."""
    text = text.strip().replace("T", " ").rstrip("Z")
    if text.endswith("+00"):
        text = text[:-3]
    if "." not in text:
        text += ".0"
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).isoformat()


# --- sources ------------------------------------------------------------------------------------------------

class MariaDBSource:
    kind = "mariadb"
    killer = "KILL"

    def create(self, rows):
        my(None, "DROP DATABASE IF EXISTS chaos_src; CREATE DATABASE chaos_src")
        my(None, "CREATE USER IF NOT EXISTS 'chaos_erp'@'127.0.0.1' IDENTIFIED BY 'chaos'; "
                 "GRANT ALL ON chaos_src.* TO 'chaos_erp'@'127.0.0.1'")
        my("chaos_src", """CREATE TABLE sale_transactions (id BIGINT PRIMARY KEY, pdv VARCHAR(20) NOT NULL,
            operator VARCHAR(20) NOT NULL, amount DECIMAL(12,2) NOT NULL, `timestamp` DATETIME(6) NOT NULL,
            type VARCHAR(20) NOT NULL, reference VARCHAR(40), updated_at DATETIME(6) NOT NULL, KEY (updated_at, id))""")
        my("chaos_src", f"""INSERT INTO sale_transactions SELECT seq, CONCAT('PDV-', seq % 50), CONCAT('OP-', seq % 300),
            ROUND(1 + (seq * 7919 % 50000) / 100, 2), ts, IF(seq % 20 = 0, 'cancelamento', 'venda'), CONCAT('R', seq), ts
            FROM (SELECT seq, UTC_TIMESTAMP(6) - INTERVAL 20 DAY + INTERVAL (seq * 1728000000000 DIV {rows}) MICROSECOND AS ts
                  FROM seq_1_to_{rows}) g""")

    def config(self):
        return f"""    type: mysql
    host: 127.0.0.1
    port: {MY_PORT}
    database: chaos_src
    username: erp_sync
    password: erp_sync
    ssl: disable"""

    def dump(self):
        return my("chaos_src", "SELECT id, amount, type, DATE_FORMAT(`timestamp`, '%Y-%m-%d %H:%i:%s.%f') FROM sale_transactions")

    def client(self):
        return ["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-P", str(MY_PORT), "-u", "chaos_erp", "-pchaos", "-N", "-B", "chaos_src"]

    now = "UTC_TIMESTAMP(6)"

    def ago(self, minutes):
        return f"UTC_TIMESTAMP(6) - INTERVAL {minutes} MINUTE"

    def kill_reader(self):
        """Kills erp-sync's connections to the source (the writer logs in as chaos_erp); how many."""
        ids = [r[0] for r in my(None, "SELECT id FROM information_schema.processlist WHERE user = 'erp_sync' AND db = 'chaos_src' "
                                     "AND id <> CONNECTION_ID()")]
        for connection in ids:
            try:
                my(None, f"KILL {connection}")
            except subprocess.CalledProcessError:
                pass
        return len(ids)


class PostgresSource:
    kind = "postgresql"
    killer = "pg_terminate_backend"

    def create(self, rows):
        pg("postgres", "DROP DATABASE IF EXISTS chaos_src WITH (FORCE)")
        pg("postgres", "CREATE DATABASE chaos_src")
        pg("chaos_src", f"""CREATE TABLE sale_transactions (id bigint PRIMARY KEY, pdv text NOT NULL, operator text NOT NULL,
            amount numeric(12,2) NOT NULL, "timestamp" timestamp(6) NOT NULL, type text NOT NULL, reference text,
            updated_at timestamp(6) NOT NULL);
            INSERT INTO sale_transactions SELECT g, 'PDV-' || (g % 50), 'OP-' || (g % 300), round(1 + (g * 7919 % 50000) / 100.0, 2), ts,
              CASE WHEN g % 20 = 0 THEN 'cancelamento' ELSE 'venda' END, 'R' || g, ts
            FROM generate_series(1, {rows}) g,
              LATERAL (SELECT (now() AT TIME ZONE 'UTC') - interval '20 days' + g * (interval '20 days' / {rows}) AS ts) t;
            CREATE INDEX ON sale_transactions (updated_at, id); ANALYZE sale_transactions""")

    def config(self):
        return f"""    type: postgresql
    host: 127.0.0.1
    port: {PG_PORT}
    database: chaos_src
    username: erp_sync
    password: erp_sync
    ssl: disable"""

    def dump(self):
        return pg("chaos_src", "SELECT id, amount, type, to_char(\"timestamp\", 'YYYY-MM-DD HH24:MI:SS.US') FROM sale_transactions")

    def client(self):
        return [f"{PGBIN}/psql", f"postgres://erp_sync:erp_sync@127.0.0.1:{PG_PORT}/chaos_src?application_name=chaos-erp",
                "-X", "-q", "-At"]

    now = "(clock_timestamp() AT TIME ZONE 'UTC')"

    def ago(self, minutes):
        return f"(clock_timestamp() AT TIME ZONE 'UTC') - interval '{minutes} minutes'"

    def kill_reader(self):
        return len(pg("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = 'chaos_src' AND application_name = 'erp-sync'"))


# --- destinations -------------------------------------------------------------------------------------------

class PostgresDestination:
    kind = "postgresql"

    def create(self):
        pg("postgres", "DROP DATABASE IF EXISTS chaos_audit WITH (FORCE)")
        pg("postgres", "CREATE DATABASE chaos_audit")

    def config(self):
        return f'destination: {{ type: postgresql, url: "postgres://erp_sync:erp_sync@127.0.0.1:{PG_PORT}/chaos_audit?sslmode=disable" }}'

    def query(self, sql):
        return pg("chaos_audit", sql)

    def dump(self):
        return self.query("SELECT external_id, amount, type, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
                          f"FROM tb_sales WHERE source_id = '{SOURCE}'")

    def checkpoint(self):
        try:
            rows = self.query(f"SELECT updated_at, sync_id FROM tb_sync_state WHERE source_id = '{SOURCE}'")
            return tuple(rows[0]) if rows else None
        except subprocess.CalledProcessError:
            return "unreachable"


class SQLiteDestination:
    kind = "sqlite"

    def __init__(self, path):
        self.path = path

    def create(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)

    def config(self):
        return f"destination: {{ type: sqlite, path: {self.path} }}"

    def query(self, sql):
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            return [[("" if v is None else str(v)) for v in row] for row in connection.execute(sql).fetchall()]
        finally:
            connection.close()

    def dump(self):
        return self.query(f"SELECT external_id, amount, type, occurred_at FROM tb_sales WHERE source_id = '{SOURCE}'")

    def checkpoint(self):
        try:
            rows = self.query(f"SELECT updated_at, sync_id FROM tb_sync_state WHERE source_id = '{SOURCE}'")
            return tuple(rows[0]) if rows else None
        except sqlite3.Error:
            return None


# --- the ERP writer and the sync runner ------------------------------------------------------------------

class Writer:
    """Inserts, updates and cancels rows through one client process per source (autocommit statements),
    restarting its client when an injection killed it."""

    def __init__(self, source, first_id, rate):
        self.source, self.next_id, self.rate = source, first_id, rate
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.process = None
        self.statements = 0

    def start(self):
        self.thread.start()
        return self

    def loop(self):
        rng = random.Random(7)
        while not self.stop_event.is_set():
            if self.process is None or self.process.poll() is not None:
                self.process = subprocess.Popen(self.source.client(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL, text=True)
            choice = rng.random()
            now = self.source.now
            if choice < 0.6 or self.next_id < 10:
                i = self.next_id
                self.next_id += 1
                sql = (f"INSERT INTO sale_transactions VALUES ({i}, 'PDV-{i % 50}', 'OP-{i % 300}', {1 + i % 9000 / 100:.2f}, "
                       f"{now}, 'venda', 'W{i}', {now});")
            else:
                target = rng.randrange(1, self.next_id)
                if choice < 0.85:
                    sql = f"UPDATE sale_transactions SET amount = amount + 1.25, updated_at = {now} WHERE id = {target};"
                else:
                    sql = f"UPDATE sale_transactions SET type = 'cancelamento', updated_at = {now} WHERE id = {target};"
            try:
                self.process.stdin.write(sql + "\n")
                self.process.stdin.flush()
                self.statements += 1
            except (BrokenPipeError, OSError):
                self.process = None
            time.sleep(1 / self.rate)

    def stop(self):
        self.stop_event.set()
        self.thread.join()
        if self.process and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


class Runner:
    """Runs `erp-sync sync` back to back (a scheduler stand-in) until stopped; kill() is kill -9 of the run."""

    def __init__(self, scenario, extra=()):
        self.scenario, self.extra = scenario, list(extra)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.process = None
        self.exit_codes = []
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def loop(self):
        while not self.stop_event.is_set():
            with self.lock:
                self.process = self.scenario.sync_process(self.extra)
            code = self.process.wait()
            self.exit_codes.append(code)
            time.sleep(0.05)

    def kill(self):
        with self.lock:
            if self.process and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                return True
        return False

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=600)


# --- scenarios ----------------------------------------------------------------------------------------------

class Scenario:
    def __init__(self, name, pair, binary, profile, directory):
        self.name, self.pair, self.bin, self.profile = name, pair, binary, profile
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.source = MariaDBSource() if pair.startswith("mariadb") else PostgresSource()
        self.dest = PostgresDestination() if pair.endswith("postgresql") else SQLiteDestination(f"{directory}/audit.sqlite")
        self.config_path = f"{directory}/erp-sync.yaml"
        self.recoveries = []
        self.injections = 0
        self.notes = []
        self.logs = 0
        self.verdict = None  # set by a scenario that must verify before it cleans up

    def write_config(self, serve=""):
        with open(self.config_path, "w") as f:
            f.write(f"""{self.dest.config()}
defaults: {{ batchSize: 1000, maxRecords: 100000000, daysBack: 0, lookback: 5m, maxRetries: 8, retryDelayMs: 200,
            maxRetryDelayMs: 2000 }}
sources:
  - name: {SOURCE}
{self.source.config()}
    timezone: UTC
    stream:
      table: sale_transactions
      primaryKey: [id]
      cursor: {{ column: updated_at, kind: timestamp }}
      fields: {{ externalId: id, pdv: pdv, operator: operator, amount: amount, occurredAt: timestamp, type: type, reference: reference }}
      typeMap: {{ venda: sale, cancelamento: cancel, devolucao: refund }}
{serve}""")

    def setup(self, rows=None):
        self.source.create(rows or self.profile["rows"])
        self.dest.create()
        self.write_config()
        self.first_writer_id = (rows or self.profile["rows"]) + 1

    def sync_process(self, extra=()):
        self.logs += 1
        out = open(f"{self.dir}/sync-{self.logs}.json", "w")
        err = open(f"{self.dir}/sync-{self.logs}.log", "w")
        return subprocess.Popen([self.bin, "sync", "--source", SOURCE, "--json", "--config", self.config_path, *extra],
                                stdout=out, stderr=err)

    def sync(self, *extra, timeout=900):
        process = self.sync_process(extra)
        code = process.wait(timeout=timeout)
        with open(f"{self.dir}/sync-{self.logs}.json") as f:
            text = f.read()
        try:
            result = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            result = {}
        if isinstance(result, list):
            result = result[0] if result else {}
        return code, result

    def catch_up(self):
        """Incremental runs until one succeeds with nothing more to read (at most 10)."""
        for _ in range(10):
            code, result = self.sync()
            if code == 0 and not result.get("hasMore"):
                return
        self.notes.append("did not catch up in 10 runs")

    def wait_progress(self, before, started, limit=900):
        """Seconds from `started` until the checkpoint differs from `before` (None when it did not in `limit`)."""
        while time.monotonic() - started < limit:
            now = self.dest.checkpoint()
            if now not in (before, "unreachable", None):
                return time.monotonic() - started
            time.sleep(0.1)
        return None

    def inject(self, action, wait=True):
        """Runs one injection; records it and its recovery time when `action` returns true."""
        started = time.monotonic()
        if not action():
            return False
        before = self.dest.checkpoint()  # after the injection: a batch committing during it is no recovery
        self.injections += 1
        if wait:
            recovery = self.wait_progress(before, started)
            if recovery is None:
                self.notes.append(f"no progress within 900 s after injection {self.injections}")
            else:
                self.recoveries.append(recovery)
        return True

    def verify(self):
        source = {}
        for key, amount, kind, occurred in self.source.dump():
            source[key] = (decimal.Decimal(amount), TYPE_MAP.get(kind, "other"), instant(occurred))
        dest_rows = self.dest.dump()
        dest = {}
        doubled = 0
        for key, amount, kind, occurred in dest_rows:
            if key in dest:
                doubled += 1
            dest[key] = (decimal.Decimal(amount), kind, instant(occurred))
        lost = len(source.keys() - dest.keys())
        doubled += len(dest.keys() - source.keys())
        stale = sum(1 for key in source.keys() & dest.keys() if source[key] != dest[key])
        running = int(self.dest.query(f"SELECT count(*) FROM tb_erp_sync_audit WHERE source_id = '{SOURCE}' AND status = 'RUNNING'")[0][0])
        source_sum = sum(v[0] for v in source.values())
        dest_sum = sum(v[0] for v in dest.values())
        return dict(rows=len(source), dest_rows=len(dest_rows), lost=lost, doubled=doubled, stale=stale, running=running,
                    sum_equal=source_sum == dest_sum)

    def dest_running(self):
        try:
            return int(self.dest.query(f"SELECT count(*) FROM tb_erp_sync_audit WHERE source_id = '{SOURCE}' AND status = 'RUNNING'")[0][0]) > 0
        except (subprocess.CalledProcessError, sqlite3.Error, IndexError):
            return False

    def random_pause(self, low=0.3, high=2.5):
        time.sleep(random.uniform(low, high))


def under_load(s, injections, inject_once, clean_up=None):
    """The frame of a scenario: the seeded rows, the ERP writer and a loop of incremental runs going, `inject_once(runner)`
    called `injections` times, then both stopped, `clean_up()` if any, and a last run that catches up."""
    s.setup()
    writer = Writer(s.source, s.first_writer_id, s.profile["writer_rate"]).start()
    runner = Runner(s).start()
    for _ in range(injections):
        inject_once(runner)
    runner.stop()
    writer.stop()
    if clean_up:
        clean_up()
    s.catch_up()


def inject_within(s, action, seconds, poll):
    """After a random pause, tries `action` (an injection that may find nothing to hit) every `poll` seconds for at most
    `seconds`."""
    s.random_pause()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not s.inject(action):
        time.sleep(poll)


def scenario_kill_sync(s):
    """kill -9 of `erp-sync sync` at random instants, resumed each time."""
    def kill(runner):
        s.random_pause()
        while not s.inject(runner.kill):  # between two runs: the next one starts within 50 ms
            time.sleep(0.01)
    under_load(s, s.profile["kill_sync"], kill)


def scenario_source_kill(s):
    """The source connection killed mid-read (MariaDB KILL, PostgreSQL pg_terminate_backend)."""
    under_load(s, s.profile["source_kill"], lambda _: inject_within(s, lambda: s.source.kill_reader() > 0, 5, 0.02))


def pg_restart():
    run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "restart", "-D", PG_DATA, "-m", "immediate", "-w", "-t", "60",
         "-l", f"{PG_DATA}/server.log"], cwd="/")
    return True


def scenario_dest_restart(s):
    """The PostgreSQL destination restarted mid-batch (pg_ctl restart -m immediate)."""
    def restart(_):
        s.random_pause(1.0, 4.0)
        s.inject(pg_restart)
    under_load(s, s.profile["dest_restart"], restart)


IDLE_KILLER = """DO $$ DECLARE killed int := 0; BEGIN
  FOR i IN 1..20000 LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT count(pg_terminate_backend(pid)) INTO killed FROM pg_stat_activity
     WHERE datname = 'chaos_audit' AND application_name = 'erp-sync' AND state = 'idle in transaction';
    EXIT WHEN killed > 0;
    PERFORM pg_sleep(0.001);
  END LOOP;
  IF killed = 0 THEN RAISE EXCEPTION 'no connection idle in transaction'; END IF;
END $$"""


def kill_idle_in_transaction():
    try:
        pg("postgres", IDLE_KILLER)
        return True
    except subprocess.CalledProcessError:
        return False


def scenario_dest_idle_kill(s):
    """The destination connection killed while idle in a transaction (pg_terminate_backend between the batch's
    statements): the case that stalled a run for statement timeout + 30 s."""
    under_load(s, s.profile["dest_idle_kill"], lambda _: inject_within(s, kill_idle_in_transaction, 60, 0))


def silence_destination_connections(hold):
    """Drops every packet of erp-sync's busy connections to the destination (the server gone silently: no FIN,
    no RST) for `hold` seconds; new connections pass."""
    ports = [r[0] for r in pg("postgres", "SELECT client_port FROM pg_stat_activity WHERE datname = 'chaos_audit' "
                                          "AND application_name = 'erp-sync' AND state <> 'idle' AND client_port IS NOT NULL")]
    if not ports:
        return False
    rules = []
    for port in ports:
        rules += [["INPUT", "-p", "tcp", "-s", "127.0.0.1", "--sport", str(PG_PORT), "--dport", port, "-j", "DROP"],
                  ["INPUT", "-p", "tcp", "-s", "127.0.0.1", "--dport", str(PG_PORT), "--sport", port, "-j", "DROP"]]
    for rule in rules:
        run(["iptables", "-I", *rule])

    def restore():
        time.sleep(hold)
        for rule in rules:
            subprocess.run(["iptables", "-D", *rule], check=False)
    threading.Thread(target=restore, daemon=True).start()
    return True


def scenario_dest_silent(s):
    """The destination server gone silently for the run's connection (its packets dropped with iptables)."""
    def restore_rules():
        subprocess.run(["bash", "-c", f"iptables -S INPUT | grep -- '--sport {PG_PORT}\\|--dport {PG_PORT}' | sed 's/^-A/-D/' "
                                      "| xargs -r -L1 iptables"], check=False)
    under_load(s, s.profile["dest_silent"], lambda _: inject_within(s, lambda: silence_destination_connections(120), 5, 0.02),
               clean_up=restore_rules)


def scenario_serve_kill(s):
    """kill -9 of `erp-sync serve` during scheduled runs (interval 1m), restarted by the script."""
    s.setup()
    s.write_config(serve="api: { host: 127.0.0.1, port: 0 }\nschedule: { enabled: true, interval: 1m, fullSyncAt: off }\n")
    writer = Writer(s.source, s.first_writer_id, s.profile["writer_rate"]).start()

    def serve():
        s.logs += 1
        return subprocess.Popen([s.bin, "serve", "--config", s.config_path], stdout=open(f"{s.dir}/serve-{s.logs}.log", "w"),
                                stderr=subprocess.STDOUT)
    process = serve()
    for _ in range(s.profile["serve_kill"]):
        # Wait for a scheduled run to be RUNNING, then kill -9 at a random instant of it.
        deadline = time.monotonic() + 180
        while not s.dest_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(random.uniform(0, 0.5))

        def kill():
            nonlocal process
            process.send_signal(signal.SIGKILL)
            process.wait()
            process = serve()
            return True
        s.inject(kill)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    writer.stop()
    s.write_config()
    s.catch_up()


def scenario_late_commits(s, outside):
    """Rows committed with a cursor value behind the checkpoint: inside the lookback (2 min) the next
    incremental run finds them; outside it (10 min) only a full sync does (the documented limit)."""
    s.setup(rows=max(2000, s.profile["rows"] // 10))
    s.catch_up()
    minutes = 10 if outside else 2
    first = s.first_writer_id + 100_000
    holders = []
    for n in range(s.profile["late"]):
        holder = subprocess.Popen(s.source.client(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        i = first + n
        holder.stdin.write(("START TRANSACTION;" if s.source.kind == "mariadb" else "BEGIN;") +
                           f"INSERT INTO sale_transactions VALUES ({i}, 'PDV-L', 'OP-L', 12.34, {s.source.ago(minutes)}, 'venda', "
                           f"'L{i}', {s.source.ago(minutes)});\n")
        holder.stdin.flush()
        holders.append(holder)
    s.injections = len(holders)
    writer = Writer(s.source, s.first_writer_id, s.profile["writer_rate"]).start()
    time.sleep(2)
    s.catch_up()  # the checkpoint passes the late rows' cursor values while they are uncommitted
    for holder in holders:
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    writer.stop()
    started = time.monotonic()
    s.catch_up()
    result = s.verify()
    if outside:
        s.notes.append(f"incremental: {result['lost']} lost (outside the lookback: documented limit)")
        started = time.monotonic()
        code, _ = s.sync("--full")
        s.notes.append(f"then sync --full: exit {code}")
    elif result["lost"]:
        s.notes.append("late rows inside the lookback were missed")
    s.recoveries.append(time.monotonic() - started)


def scenario_disk_full(s):
    """A SQLite destination on a full disk (a small tmpfs): the run fails cleanly, nothing half-written, and the
    next run after space returns completes."""
    mount_point = f"{s.dir}/disk"
    os.makedirs(mount_point, exist_ok=True)
    subprocess.run(["umount", mount_point], check=False, capture_output=True)
    run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount_point])
    try:
        s.dest = SQLiteDestination(f"{mount_point}/audit.sqlite")
        s.setup(rows=max(30_000, s.profile["rows"] // 4))
        writer = Writer(s.source, s.first_writer_id, s.profile["writer_rate"]).start()
        size = 3
        for _ in range(s.profile["disk_full"]):
            code, result = s.sync()
            errors = [e.get("code", "?") + ": " + e.get("message", "")[:80] for e in result.get("errors", [])]
            s.injections += 1
            # The writer keeps changing rows, so loaded rows may be behind the source (stale) until the next run. A
            # run whose final audit row could not be written either (the disk still full) stays RUNNING until the
            # next run takes the lock and closes it FAILED: reported, and checked at the end.
            partial = s.verify()
            clean = partial["doubled"] == 0 and s.dest.query("PRAGMA integrity_check")[0][0] == "ok"
            s.notes.append(f"{size} MiB: exit {code}, {partial['dest_rows']} rows kept, {'clean' if clean else 'NOT CLEAN'}"
                           + (", run left RUNNING until the next one" if partial["running"] else "") + "; "
                           + (errors[0] if errors else "no error reported"))
            size += 2
            run(["mount", "-o", f"remount,size={size}m", mount_point])
        run(["mount", "-o", "remount,size=256m", mount_point])
        writer.stop()
        started = time.monotonic()
        s.catch_up()
        s.recoveries.append(time.monotonic() - started)
        s.verdict = s.verify()
    finally:
        subprocess.run(["umount", "-l", mount_point], check=False)


# name: (title, function, pairs, the profile's injection count)
SCENARIOS = {
    "kill-sync": ("kill -9 sync", scenario_kill_sync, PAIRS, "kill_sync"),
    "serve-kill": ("kill -9 serve (scheduled runs)", scenario_serve_kill, PAIRS, "serve_kill"),
    "source-kill": ("source connection killed", scenario_source_kill, PAIRS, "source_kill"),
    "dest-restart": ("destination restart -m immediate", scenario_dest_restart, ["mariadb-postgresql"], "dest_restart"),
    "dest-idle-kill": ("dest. conn. killed idle in txn", scenario_dest_idle_kill, ["mariadb-postgresql"], "dest_idle_kill"),
    "dest-silent": ("dest. conn. silent (packets dropped)", scenario_dest_silent, ["mariadb-postgresql"], "dest_silent"),
    "late-inside": ("late commit inside lookback", lambda s: scenario_late_commits(s, False), PAIRS, "late"),
    "late-outside": ("late commit outside lookback, then --full", lambda s: scenario_late_commits(s, True), PAIRS, "late"),
    "disk-full": ("SQLite destination disk full", scenario_disk_full, ["postgresql-sqlite"], "disk_full"),
}


# What a scenario needs from the machine (a container without netfilter or CAP_SYS_ADMIN): checked before it runs,
# a scenario whose check fails is skipped and listed under the table.
REQUIREMENTS = {
    "dest-silent": (["iptables", "-S", "INPUT"], "iptables does not work here (no netfilter or no CAP_NET_ADMIN)"),
    "disk-full": (["bash", "-c", f"mkdir -p {WORK}/probe && mount -t tmpfs -o size=1m tmpfs {WORK}/probe && umount {WORK}/probe"],
                  "cannot mount a tmpfs here (no CAP_SYS_ADMIN)"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the erp-sync binary")
    parser.add_argument("--profile", choices=PROFILES, default="full")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, of: " + ", ".join(SCENARIOS))
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--injections", type=int, help="injections per scenario instead of the profile's")
    args = parser.parse_args()
    random.seed(args.seed)
    profile = dict(PROFILES[args.profile])
    if args.injections is not None:
        profile.update({key: args.injections for _, _, _, key in SCENARIOS.values()})
    log(f"profile {args.profile}, seed {args.seed}, binary {args.bin}")
    results = []
    skipped = []
    failed = False
    for name in args.scenarios.split(","):
        title, function, pairs, count = SCENARIOS[name]
        missing = REQUIREMENTS.get(name)
        if missing and subprocess.run(missing[0], capture_output=True).returncode != 0:
            log(f"{title}: skipped, {missing[1]}")
            skipped.append(f"{title}: skipped, {missing[1]}")
            continue
        for pair in pairs:
            if pair not in args.pairs.split(",") or profile[count] == 0:
                continue
            s = Scenario(name, pair, args.bin, profile, f"{WORK}/{name}-{pair}")
            log(f"{title} on {pair}")
            started = time.monotonic()
            function(s)
            verdict = s.verdict or s.verify()
            if s.injections == 0:
                s.notes.append("no injection happened")
            elapsed = time.monotonic() - started
            ok = (verdict["lost"] == 0 and verdict["doubled"] == 0 and verdict["stale"] == 0 and verdict["running"] == 0
                  and verdict["sum_equal"] and not any("no progress" in n or "did not" in n or "NOT CLEAN" in n or "were missed" in n or "no injection" in n
                                                       for n in s.notes))
            failed |= not ok
            results.append((title, pair, s, verdict, elapsed, ok))
            log(f"  {verdict} notes={s.notes} recoveries={[round(r, 1) for r in s.recoveries]} ({elapsed:.0f} s)")
    print_table(results, args)
    for line in skipped:
        print(f"- {line}")
    return 1 if failed else 0


def print_table(results, args):
    header = ["scenario", "pair", "inj.", "rows", "lost", "doubled", "stale", "RUNNING", "recovery median/max s", "result"]
    rows = []
    for title, pair, s, v, elapsed, ok in results:
        recovery = "-" if not s.recoveries else f"{statistics.median(s.recoveries):.1f} / {max(s.recoveries):.1f}"
        rows.append([title, pair.replace("-", " → "), str(s.injections), str(v["rows"]), str(v["lost"]), str(v["doubled"]),
                     str(v["stale"]), str(v["running"]), recovery, "ok" if ok else "FAIL"])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(f"\nerp-sync fault injection, profile {args.profile}, seed {args.seed}")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    for title, pair, s, v, elapsed, ok in results:
        for note in s.notes:
            print(f"- {title}, {pair}: {note}")


if __name__ == "__main__":
    sys.exit(main())
