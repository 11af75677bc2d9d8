"""`pen bench ingest`: validated+stored records per second into a CTB,
against bare libsodium verifies per second on the same number of cores.

The workload is what a CTB node ingests most: payments. Tokens are issued
(ISSUE, by the producing council under its approved proposal), handed to
users (SET_USER) and spent (USE, signed by one of many users), uploaded in
batches of BATCH records in arrival order. Every record is parsed, checked
by the one validator (pen_protocol.ctb, signature included) and stored in
one transaction per batch in a fresh database: a SQLite file (WAL,
synchronous=FULL) or, with --db postgresql://..., a database created for
each round on that server (the role needs CREATEDB) and dropped after.

Equal cores on both sides (issue 14 item 7): with C cores the node runs
this process and C - 1 signature workers (pen.verifypool, as `pen node
serve --verify-workers`), and the bound is C worker processes doing nothing
but libsodium's crypto_sign_open over equal shares of the same signatures.
ratio_to_verify_bound is the one over the other; ratio_one_core compares
one process against one verify loop. Both ratios are computed from the
rounded rates the report prints, so anyone can check them. The CPU this
process spends per record is reported too: on a loaded machine the wall
clock hides what a free core would give the workers.

`--single` measures the other shape: single-record POSTs over HTTP to one
node (`pen node serve` in this process, clients in processes of their own
on keep-alive connections, each request signed as a bridge signs), the USE
of a payment each, with the node signing its receipt.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from pen import build as B
from pen.keys import Signer
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import records as R, sign

BATCH = 500
TOKENS = 3000  # x 3 records = 9000 records; the sample proposal approves 25000 more credits
USERS = 200
CORES = min(2, os.cpu_count() or 1)  # the node's configuration on the reference machine: 1 worker beside it
VERIFY_WORKERS = CORES - 1  # kept for callers of the old name
# Batch sizes of the per-batch figures; below SMALL_BATCH each batch is a
# commit of its own, so those are measured over SMALL_RECORDS records.
BATCH_SIZES = (1, 10, 100, 500, 1000)
SMALL_BATCH = 100
SMALL_RECORDS = 300
SINGLE_POSTS = 2000
SINGLE_CLIENTS = 2  # client processes (bridges, stores: other machines in a deployment)
SINGLE_CONNECTIONS = 16  # keep-alive connections, one request at a time each, per client process


def workload(tokens=TOKENS, users=USERS):
    """(base records, payment records in arrival order)."""
    k, ordered, n = economy()
    base = [r for r in ordered if r.type not in (R.USE, R.ACCOUNTED, R.CONFLICT)]
    fp = k["formosa-plumbing"]
    prop = n["proposal"].fields[0]
    people = [Signer.from_phrase("bench-user-%d" % i) for i in range(users)]
    recs = []
    for i in range(tokens):
        user = people[i % users]
        t = B.issue(fp, 1000 + i, 1, prop)
        recs += [t, B.set_user(fp, t.fields[0], user),
                 B.use(user, t.fields[0], "5010%04d" % (i % 97), "4014%04d" % (i % 89))]
    return base, recs


def _signers(base, recs):
    """(public key, signed message, signature) of every payment record."""
    keys = {}
    for r in base:
        if r.type == R.COUNCIL:
            keys[sign.kid(r.fields[0])] = r.fields[0]
    users = {}
    out = []
    for r in recs:
        if r.type == R.ISSUE:
            pk = keys[R.ref_kid(r.fields[0])]
        elif r.type == R.SET_USER:
            pk = keys[R.ref_kid(r.fields[0])]
            users[r.fields[0]] = r.fields[1]
        else:
            pk = users[r.fields[0]]
        out.append((pk, r.signed_message(), r.sig))
    return out


# -- the bound ---------------------------------------------------------------------

def verify_rate(triples, rounds=3):
    """Bare libsodium verifications per second on one core (best of rounds)."""
    from nacl.bindings import crypto_sign_open
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for pk, msg, sig in triples:
            crypto_sign_open(sig + msg, pk)
        best = max(best, len(triples) / (time.perf_counter() - t))
    return best


def verify_rate_cores(triples, cores, rounds=3):
    """Bare verifications per second on `cores` processes (best of rounds)."""
    if cores <= 1:
        return verify_rate(triples, rounds)
    from pen.verifypool import ParallelVerifier
    pool = ParallelVerifier(cores)
    try:
        best = 0.0
        for _ in range(rounds):
            t = time.perf_counter()
            if not pool.workers_valid(triples):
                raise RuntimeError("a bench signature did not verify")
            best = max(best, len(triples) / (time.perf_counter() - t))
        return best
    finally:
        pool.close()


# -- fresh databases -----------------------------------------------------------------

def fresh_store(db=None):
    """(store, drop): an empty CTB, SQLite in a temporary folder or a new
    PostgreSQL database on db's server; drop() removes it."""
    if db and db.startswith(("postgres://", "postgresql://")):
        return _fresh_pg(db)
    d = tempfile.TemporaryDirectory(prefix="pen-ingest-")
    store = SQLiteCTB(os.path.join(d.name, "ctb.sqlite"))

    def drop():
        store.close()
        d.cleanup()
    return store, drop


def _fresh_pg(url):
    import uuid
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from pen.pgstore import PostgresCTB
    name = "pen_bench_" + uuid.uuid4().hex[:12]
    admin = make_conninfo(url, dbname=conninfo_to_dict(url).get("dbname") or "postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("CREATE DATABASE %s" % name)
    store = PostgresCTB(make_conninfo(url, dbname=name))

    def drop():
        store.close()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("DROP DATABASE IF EXISTS %s" % name)
    return store, drop


def database_kind(db):
    return "postgresql" if db and db.startswith(("postgres://", "postgresql://")) else "sqlite"


# -- ingest ----------------------------------------------------------------------------

def ingest_rate(base, recs, batch=BATCH, rounds=3, verifier=None, db=None):
    """Validated+stored records per second (best of rounds, each into a fresh database)."""
    return max(ingest_once(base, recs, batch, verifier, db)[0] for _ in range(rounds))


def ingest_run(base, recs, batch=BATCH, rounds=3, verifier=None, db=None):
    """(best records/s, least CPU of this process per record in us)."""
    runs = [ingest_once(base, recs, batch, verifier, db) for _ in range(rounds)]
    return max(r[0] for r in runs), min(r[1] for r in runs)


def ingest_once(base, recs, batch=BATCH, verifier=None, db=None):
    """One run into a fresh database: (records/s, CPU of this process per
    record in us, CPU of the busiest signature worker per record in us or
    None). With the workers on cores of their own the busier of the two
    CPU figures is the critical path, whatever else the machine is doing."""
    raws = [r.raw for r in recs]
    store, drop = fresh_store(db)
    try:
        store.verifier = verifier
        store.submit([r.raw for r in base])
        w0 = _workers_cpu(verifier)
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(raws), batch):
            store.submit(raws[i:i + batch])
        dt, dc = time.perf_counter() - t, time.process_time() - c
        w1 = _workers_cpu(verifier)
        if store.count() != len(base) + len(raws):
            raise RuntimeError("ingest lost records")
    finally:
        drop()
    worker = max(b - a for a, b in zip(w0, w1)) / len(raws) * 1e6 if w0 and w1 else None
    return len(raws) / dt, dc / len(raws) * 1e6, worker


def _workers_cpu(verifier):
    """CPU seconds of each signature worker, or None (no verifier, or one
    that cannot tell)."""
    cpu_s = getattr(verifier, "cpu_s", None)
    return cpu_s() if cpu_s is not None else None


def verify_cpu_us(triples):
    """CPU of one bare libsodium verify in us (process_time, one core)."""
    from nacl.bindings import crypto_sign_open
    c = time.process_time()
    for pk, msg, sig in triples:
        crypto_sign_open(sig + msg, pk)
    return (time.process_time() - c) / len(triples) * 1e6


def _median_round(rounds):
    """The round whose ratio (ingest / bound) is the median: its figures are
    reported as they were measured, side by side, so the ratio checks."""
    return sorted(rounds, key=lambda r: r[0] / r[1])[len(rounds) // 2]


def run_ingest_bench(tokens=TOKENS, batch=BATCH, rounds=3, cores=CORES, db=None, batch_sizes=BATCH_SIZES):
    """Each round measures the bound and then the node on C cores, then on
    one core, back to back, so both sides of a ratio see the same load (on a
    shared machine the load moves within seconds); the round with the median
    ratio is reported, every round is listed."""
    from pen.verifypool import ParallelVerifier
    base, recs = workload(tokens)
    triples = _signers(base, recs)
    pool = ParallelVerifier(cores - 1) if cores > 1 else None
    many, one, cpu = [], [], []
    shipped = 0  # signatures the measured rounds sent to the workers
    try:
        ingest_once(base, recs[:3 * batch], batch, pool, db)  # warm: imports, caches, the pool's share
        for _ in range(rounds):
            vn = verify_rate_cores(triples, cores, 1)
            before = pool.shipped[0] if pool else 0
            r = ingest_once(base, recs, batch, pool, db) if pool else None
            shipped += (pool.shipped[0] - before) if pool else 0
            v1 = verify_rate(triples, 1)
            r1 = ingest_once(base, recs, batch, None, db)
            one.append([round(r1[0]), round(v1)])
            many.append([round(r[0]), round(vn)] if r else one[-1])
            cpu.append((r[1] if r else r1[1], r[2] if r else None, r1[1], verify_cpu_us(triples)))
        per_batch = {}
        for size in batch_sizes:
            part = recs[:SMALL_RECORDS] if size < SMALL_BATCH else recs
            per_batch[str(size)] = round(ingest_rate(base, part, size, 1, pool, db))
    finally:
        if pool:
            pool.close()
    (r_many, vn), (r_one, v1) = _median_round(many), _median_round(one)
    main, worker, alone, verify = (_r1(_median([c[i] for c in cpu])) for i in range(4))
    return {"records": len(recs), "batch": batch, "database": database_kind(db), "cores": cores,
            "verify_workers": cores - 1, "rounds": rounds,
            "records_per_s": r_many, "verify_per_s": vn, "ratio_to_verify_bound": round(r_many / vn, 3),
            "records_per_s_one_core": r_one, "verify_per_s_one_core": v1, "ratio_one_core": round(r_one / v1, 3),
            "rounds_records_and_verify_per_s": many, "rounds_one_core": one,
            "per_batch_records_per_s": per_batch, "signatures_to_workers": shipped,
            "main_cpu_us_per_record": main, "worker_cpu_us_per_record": worker,
            "main_cpu_us_per_record_one_core": alone, "verify_cpu_us": verify,
            "cpu_ratio_to_verify_bound": _cpu_ratio(verify, cores, main, worker),
            "cpu_ratio_one_core": _cpu_ratio(verify, 1, alone, None)}


def ingest_phases(tokens=TOKENS, batch=BATCH, db=None):
    """Where one core's time goes per record, in us of CPU (process_time),
    signatures aside (the checks answer True for the run; the bare verify is
    measured apart): parse, the batch's lookups (ids held, token states),
    the validator's rules, the write (state encoding and SQL), the commit."""
    from pen_protocol import sign
    from pen.store import _parsed
    base, recs = workload(tokens)
    triples = _signers(base, recs)
    store, drop = fresh_store(db)
    spent = {"lookups": 0.0, "write": 0.0, "commit": 0.0}

    def timed(name, fn):
        def run(*a):
            c = time.process_time()
            try:
                return fn(*a)
            finally:
                spent[name] += time.process_time() - c
        return run
    try:
        store.submit([r.raw for r in base])
        store.ids_held = timed("lookups", store.ids_held)
        store._state_many = timed("lookups", store._state_many)
        store._write = timed("write", store._write)
        store._commit = timed("commit", store._commit)
        sign.set_verifier(lambda pk, msg, sig: True)
        c = time.process_time()
        parsed = _parsed([r.raw for r in recs])  # as the store parses what it is given
        parse = time.process_time() - c
        c = time.process_time()
        for i in range(0, len(parsed), batch):
            store.submit(parsed[i:i + batch])
        total = time.process_time() - c + parse
    finally:
        sign.set_verifier(None)
        drop()
    out = {"parse": parse, "lookups": spent["lookups"], "write": spent["write"], "commit": spent["commit"]}
    out["rules"] = total - sum(out.values())
    us = {k: round(v / len(recs) * 1e6, 1) for k, v in out.items()}
    us["total"] = round(total / len(recs) * 1e6, 1)
    us["verify"] = round(verify_cpu_us(triples), 1)
    res = {"records": len(recs), "batch": batch, "database": database_kind(db), "us_per_record": us,
           "ceiling_ratio": round(us["verify"] / (us["verify"] + us["total"]), 3)}
    if database_kind(db) == "sqlite":
        res["sql_floor_us_per_record"] = sql_floor(base, recs, batch)
        res["python_floors_us_per_record"] = python_floors(base, recs, batch)
    return res


def python_floors(base, recs, batch=BATCH, rounds=3):
    """The Python pieces of the ingest measured alone, us of CPU a record
    (least of rounds): "parse", the payments parsed as the store parses
    them (pen.store._parsed); "rules", the validator over a plain in-memory
    state (ctb.apply_batch on a MemoryState in the same batches, signatures
    answered True); "encode", the batches' state values encoded as the
    store encodes them (SQLStore._rows). What the phases of ingest_phases
    cost above these and the SQL floor is the store's own bookkeeping."""
    from pen import fastparse
    from pen.store import _parsed
    from pen_protocol import cbor, ctb
    raws = [r.raw for r in recs]
    values = [cbor.loads(v) for rows in batch_rows(base, recs, batch) for _, v in rows[1]]

    def rules():
        st = ctb.MemoryState()
        st.absorb(ctb.apply_batch(st, _parsed([r.raw for r in base]))[0])
        parsed = _parsed(raws)

        def run():
            for i in range(0, len(parsed), batch):
                st.absorb(ctb.apply_batch(st, parsed[i:i + batch])[0])
        return run

    def least(setup):
        best = None
        for _ in range(rounds):
            run = setup()
            c = time.process_time()
            run()
            best = min(best or 1e9, time.process_time() - c)
        return round(best / len(recs) * 1e6, 2)
    sign.set_verifier(lambda pk, msg, sig: True)
    try:
        return {"parse": least(lambda: lambda: _parsed(raws)), "rules": least(rules),
                "encode": least(lambda: lambda: [fastparse.dumps(v) for v in values])}
    finally:
        sign.set_verifier(None)


def batch_rows(base, recs, batch=BATCH):
    """[(record rows, state rows, deleted keys)] of each batch exactly as the
    store writes them (SQLStore._rows), from an ingest with every signature
    answered True."""
    from pen_protocol import sign
    store, drop = fresh_store()
    rows = []
    inner = store._write

    def capture(ov, *fresh):
        rows.append(store._rows(ov, 0.0))
        return inner(ov, *fresh)
    try:
        store.submit([r.raw for r in base])
        store._write = capture
        sign.set_verifier(lambda pk, msg, sig: True)
        for i in range(0, len(recs), batch):
            store.submit([r.raw for r in recs[i:i + batch]])
    finally:
        sign.set_verifier(None)
        drop()
    return rows


def sql_floor(base, recs, batch=BATCH, rounds=3):
    """The SQL write's floor, us of CPU a record (least of rounds): the
    rows the store writes for the workload, written with nothing else
    running, into a fresh SQLite CTB (the store's schema and settings), one
    transaction a batch, commit included; "executemany" one row a statement,
    "values" as SQLiteCTB writes (pen.store.ROWS_PER_INSERT rows a
    statement). What no change above the database can take away."""
    from pen.store import RECORD_ROWS, STATE_ROWS
    rows = batch_rows(base, recs, batch)
    n = sum(len(r[0]) for r in rows)
    out = {}
    for kind in ("executemany", "values"):
        best = None
        for _ in range(rounds):
            store, drop = fresh_store()
            try:
                c = time.process_time()
                for recs_rows, state_rows, gone in rows:
                    store.db.execute("BEGIN IMMEDIATE")
                    if kind == "values":
                        store._many_values(RECORD_ROWS, recs_rows)
                        store._many_values(STATE_ROWS, state_rows)
                    else:
                        store.db.executemany("".join(RECORD_ROWS), recs_rows)
                        store.db.executemany("".join(STATE_ROWS), state_rows)
                    store.db.executemany("DELETE FROM state WHERE key=?", gone)
                    store.db.execute("COMMIT")
                dc = time.process_time() - c
            finally:
                drop()
            best = dc if best is None else min(best, dc)
        out[kind] = round(best / n * 1e6, 1)
    return out


# Rows a --grown run puts in the records table before the measured workload.
GROWN_ROWS = 200000


def run_grown_bench(grown=GROWN_ROWS, tokens=TOKENS, batch=BATCH, seed=0):
    """Records/s and CPU a record (one core) of the workload into a SQLite CTB
    whose records table already holds `grown` rows: with the store's page
    cache and checkpoint settings (pen.store.CACHE_KIB, WAL_CHECKPOINT_PAGES)
    and with SQLite's defaults. The rows are filler written straight into
    the table (random 16-byte ids, 120-byte bodies: the size of a payment),
    not records (the sample economy cannot issue that many tokens): what
    grows with a CTB is the random-id index, and that is what they fill."""
    import random
    rnd = random.Random(seed)
    base, recs = workload(tokens)
    filler = [(rnd.randbytes(16), R.PUBLICATION, None, rnd.randbytes(120), 0.0) for _ in range(grown)]
    out = {"records": len(recs), "grown": grown, "batch": batch}
    for name, pragmas in (("store", ()), ("sqlite_defaults", ("PRAGMA cache_size=-2000",
                                                               "PRAGMA wal_autocheckpoint=1000"))):
        store, drop = fresh_store()
        try:
            for p in pragmas:
                store.db.execute(p)
            store.submit([r.raw for r in base])
            for i in range(0, grown, 5000):
                store.db.execute("BEGIN IMMEDIATE")
                store.db.executemany("INSERT INTO records(id, type, token, raw, received) VALUES (?,?,?,?,?)",
                                     filler[i:i + 5000])
                store.db.execute("COMMIT")
            raws = [r.raw for r in recs]
            t, c = time.perf_counter(), time.process_time()
            for i in range(0, len(raws), batch):
                store.submit(raws[i:i + batch])
            dt, dc = time.perf_counter() - t, time.process_time() - c
        finally:
            drop()
        out[name] = {"records_per_s": round(len(raws) / dt), "cpu_us_per_record": round(dc / len(raws) * 1e6, 1)}
    return out


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def _r1(x):
    return None if x is None else round(x, 1)


def _cpu_ratio(verify_us, cores, main_us, worker_us):
    """What the run would give on otherwise idle cores: records/s are
    bounded by the busier process (1 / max CPU a record), the bound is
    cores / verify CPU; None if a worker's CPU is unknown. From the rounded
    figures as reported, so the ratio checks."""
    if cores > 1 and worker_us is None:
        return None
    return round(verify_us / (cores * max(main_us, worker_us or 0)), 3)


# -- single-record POSTs over HTTP ---------------------------------------------------------

def _client_main():
    """A bench client process: on stdin the node's URL, the bridge key's
    seed, the number of connections, n, then n records (hex lines); prints
    "ready", waits for a line, POSTs each record alone over its keep-alive
    connections (one thread each), prints how many the node took."""
    import threading
    from pen_protocol import cbor
    inp = sys.stdin
    url = inp.readline().strip()
    signer = Signer(bytes.fromhex(inp.readline().strip()))
    conns = int(inp.readline())
    raws = [bytes.fromhex(inp.readline().strip()) for _ in range(int(inp.readline()))]
    bodies = [cbor.dumps([raw]) for raw in raws]
    ok = [0] * conns
    threads = [threading.Thread(target=_post_all, args=(url, signer, bodies[i::conns], ok, i)) for i in range(conns)]
    print("ready", flush=True)
    inp.readline()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(sum(ok), flush=True)


def _post_all(url, signer, bodies, ok, i):
    import http.client
    import urllib.parse
    from pen.peering import CBOR, sign_request
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    for body in bodies:
        h = sign_request(signer, "POST", u.netloc, "/v1/records", body, time.time())
        h["Content-Type"] = CBOR
        conn.request("POST", "/v1/records", body, h)
        r = conn.getresponse()
        data = r.read()
        ok[i] += r.status == 200 and json.loads(data)["ok"]


def single_rate(posts=SINGLE_POSTS, clients=SINGLE_CLIENTS, db=None, amortised=True, connections=SINGLE_CONNECTIONS):
    """(single-record POSTs per second, receipts made, the node's CPU per
    POST in us: the clients run in processes of their own) on a fresh node;
    amortised=False is the earlier node: a commit and a sync-index update
    for every POST."""
    from pen.node.auth import BRIDGE, allow_peer
    from pen.node.core import INDEX_LAG, Node
    from pen.node.server import GROUP_RECORDS, serve_in_thread
    k, _, _ = economy()
    base, recs = workload(posts)
    uses = [r.raw for r in recs if r.type == R.USE]
    store, drop = fresh_store(db)
    srv = None
    procs = []
    try:
        store.submit([r.raw for r in base])
        rest = [r.raw for r in recs if r.type != R.USE]
        for i in range(0, len(rest), 1000):
            store.submit(rest[i:i + 1000])
        bridge = Signer.from_phrase("bench-bridge")
        allow_peer(store, bridge.public_key, "bench", BRIDGE, rate=1e9, burst=1e9)
        node = Node(store, node_key=k["common-node"], index_lag=INDEX_LAG if amortised else 1)
        srv = serve_in_thread(node, group_records=GROUP_RECORDS if amortised else 0)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        for c in range(clients):
            mine = uses[c::clients]
            p = subprocess.Popen([sys.executable, "-c", "from pen.ingest_bench import _client_main; _client_main()"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
            p.stdin.write("%s\n%s\n%d\n%d\n%s\n" % (srv.url, bridge.seed.hex(), connections, len(mine),
                                                     "\n".join(r.hex() for r in mine)))
            p.stdin.flush()
            procs.append(p)
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a bench client did not start")
        before = store.count()
        t, c = time.perf_counter(), time.process_time()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        taken = sum(int(p.stdout.readline()) for p in procs)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        if taken != len(uses):
            raise RuntimeError("the node took %d of %d single-record POSTs" % (taken, len(uses)))
        return len(uses) / dt, store.count() - before - len(uses), dc / len(uses) * 1e6
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(30)
        if srv is not None:
            srv.stop()
        drop()


def run_single_bench(posts=SINGLE_POSTS, clients=SINGLE_CLIENTS, db=None, connections=SINGLE_CONNECTIONS):
    """POSTs/s with commits and the sync index amortised (group commit,
    pen.node.core.INDEX_LAG) and, for comparison, as the earlier node did
    it: a commit and an index update for every POST."""
    amortised, receipts, cpu = single_rate(posts, clients, db, True, connections)
    before, _, cpu_before = single_rate(posts, clients, db, False, connections)
    return {"posts": posts, "clients": clients, "connections": clients * connections, "database": database_kind(db),
            "receipts": receipts, "posts_per_s": round(amortised), "posts_per_s_one_commit_each": round(before),
            "node_cpu_us_per_post": round(cpu), "node_cpu_us_per_post_one_commit_each": round(cpu_before)}


def cmd(args):
    single = getattr(args, "single", False)
    phases = getattr(args, "phases", False)
    grown = getattr(args, "grown", None)
    if grown is not None:
        res = run_grown_bench(grown)
    else:
        run = run_single_bench if single else ingest_phases if phases else run_ingest_bench
        res = run(db=getattr(args, "db", None))
    if getattr(args, "json", False):
        print(json.dumps(res))
    elif grown is not None:
        print("ingest into a SQLite CTB already holding %(grown)d rows (%(records)d records, batches of "
              "%(batch)d, one core): " % res + "; ".join(
                  "%s %d records/s, %.1f us CPU a record" % (k, res[k]["records_per_s"], res[k]["cpu_us_per_record"])
                  for k in ("store", "sqlite_defaults")))
    elif phases:
        print("CPU per record on one core, us (%(database)s, %(records)d records, batches of %(batch)d): " % res
              + ", ".join("%s %.1f" % kv for kv in res["us_per_record"].items()))
        print("so one core's best ratio to bare verify is verify / (verify + total) = %.3f" % res["ceiling_ratio"])
        floor = res.get("sql_floor_us_per_record")
        if floor:
            print("the same rows written with nothing else (SQL floor, commit included): %.1f us a record one row "
                  "a statement, %.1f us as the store writes them" % (floor["executemany"], floor["values"]))
            print("the Python alone: parse %(parse).1f, rules in memory %(rules).1f, state encoding %(encode).1f "
                  "us a record" % res["python_floors_us_per_record"])
    elif single:
        print("single-record POSTs over HTTP (%(database)s, %(connections)d connections, signed, a receipt "
              "each): %(posts_per_s)d/s; with a commit and a sync-index update for every POST, as before: "
              "%(posts_per_s_one_commit_each)d/s; the node's CPU per POST %(node_cpu_us_per_post)d us "
              "(before %(node_cpu_us_per_post_one_commit_each)d us)" % res)
    else:
        print("ingest (%(database)s, %(cores)d cores): %(records_per_s)d records/s validated and stored "
              "(%(records)d records, batches of %(batch)d); bare libsodium verify on %(cores)d cores: "
              "%(verify_per_s)d/s; ratio %(ratio_to_verify_bound).3f. One core: %(records_per_s_one_core)d/s "
              "against %(verify_per_s_one_core)d/s, ratio %(ratio_one_core).3f" % res)
        print("CPU of the node process per record: %(main_cpu_us_per_record).1f us with %(verify_workers)d "
              "workers, %(main_cpu_us_per_record_one_core).1f us alone; a bare verify %(verify_cpu_us).1f us" % res)
        if res["cpu_ratio_to_verify_bound"] is not None:
            print("on otherwise idle cores (CPU of the busiest process, worker %(worker_cpu_us_per_record).1f us): "
                  "ratio %(cpu_ratio_to_verify_bound).3f on %(cores)d cores, %(cpu_ratio_one_core).3f on one" % res)
        print("by batch size (records/s): " + ", ".join(
            "%s: %d" % kv for kv in res["per_batch_records_per_s"].items()))
    return 0
