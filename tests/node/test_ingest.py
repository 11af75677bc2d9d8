"""Ingest fast path: batch prefetch, decoded-state cache, optimistic
validation with signatures checked by worker processes — each must give
exactly the verdicts and state of the plain one-by-one path."""
import json
import sys

import pytest

from pen.ingest_bench import workload, run_ingest_bench, cmd, _signers
from pen.store import SQLiteCTB, BatchRejected
from pen.verifypool import ParallelVerifier, verify_all, MIN_SHARED


def fresh(tmp_path, name, base, verifier=None):
    s = SQLiteCTB(tmp_path / name, clock=lambda: 1795000000)
    s.submit([r.raw for r in base])
    s.verifier = verifier
    return s


def test_parallel_path_stores_what_the_plain_path_stores(tmp_path, pool, payments):
    base, recs = payments
    plain, fast = fresh(tmp_path, "a", base), fresh(tmp_path, "b", base, pool)
    for i in range(0, len(recs), 100):
        va = plain.submit([r.raw for r in recs[i:i + 100]])
        vb = fast.submit([r.raw for r in recs[i:i + 100]])
        assert [(v.code, v.reason) for v in va] == [(v.code, v.reason) for v in vb]
    assert plain.state_digest() == fast.state_digest()


def forge(rec):
    raw = bytearray(rec.raw)
    raw[-1] ^= 1
    return bytes(raw)


@pytest.mark.parametrize("where", [3, 150, 299])  # in the worker's share, and in this process's
def test_a_bad_signature_found_in_bulk_gives_the_exact_verdict_and_stores_nothing(tmp_path, pool, payments, where):
    base, recs = payments
    fast = fresh(tmp_path, "b", base, pool)
    before = fast.state_digest()
    raws = [r.raw for r in recs[:300]]
    raws[where] = forge(recs[where])
    with pytest.raises(BatchRejected) as e:
        fast.submit(raws)
    assert e.value.index == where and e.value.verdict.reason == "bad-signature"
    assert fast.state_digest() == before and fast.count() == len(base)
    fast.submit([r.raw for r in recs[:300]])  # and the store still works
    assert fast.count() == len(base) + 300


def test_other_rejections_are_reported_as_on_the_plain_path(tmp_path, pool, payments):
    base, recs = payments
    fast = fresh(tmp_path, "b", base, pool)
    uses = [r for r in recs if r.type == 10][:80]
    with pytest.raises(BatchRejected) as e:
        fast.submit([r.raw for r in uses])  # their tokens are not in the CTB
    assert e.value.index == 0 and e.value.verdict.reason == "unknown-token"


def test_verify_all_in_workers_and_here(pool, payments):
    base, recs = payments
    triples = _signers(base, recs)[:2 * MIN_SHARED]
    assert verify_all(triples) and pool.all_valid(triples)
    for i in (0, len(triples) - 1):
        bad = list(triples)
        pk, msg, sig = bad[i]
        bad[i] = (pk, msg + b"x", sig)
        assert pool.all_valid(bad) is False


def test_bench_compares_equal_cores_and_reports_each_batch_size():
    res = run_ingest_bench(tokens=60, rounds=1, cores=2, batch_sizes=(1, 100))
    assert res["records"] == 180 and res["cores"] == 2 and res["verify_workers"] == 1
    assert res["records_per_s"] > 0 and res["verify_per_s"] > 0 and res["verify_per_s_one_core"] > 0
    assert set(res["per_batch_records_per_s"]) == {"1", "100"} and all(res["per_batch_records_per_s"].values())
    assert res["main_cpu_us_per_record"] > 0 and res["main_cpu_us_per_record_one_core"] > 0
    # the worker took signatures, counted: not "the main's CPU a record is below the one-core run's" (under load
    # the stream keeps more here when the worker is late) nor "the worker's CPU is above 0" (/proc counts
    # 10 ms ticks and 180 records are ~5 ms of its work): both failed now and then in a full suite
    assert res["signatures_to_workers"] > 0
    # The ratios are computed from the figures as reported. Before, the test
    # recomputed the ratio from rounded rates while the bench used unrounded
    # ones, and failed whenever rounding crossed a boundary (issue 14 item 8).
    assert res["ratio_to_verify_bound"] == round(res["records_per_s"] / res["verify_per_s"], 3)
    assert res["ratio_one_core"] == round(res["records_per_s_one_core"] / res["verify_per_s_one_core"], 3)
    # each ratio is one round's, ingest and bound measured back to back (the median round of three)
    assert [res["records_per_s"], res["verify_per_s"]] in res["rounds_records_and_verify_per_s"]
    assert [res["records_per_s_one_core"], res["verify_per_s_one_core"]] in res["rounds_one_core"]
    assert len(res["rounds_records_and_verify_per_s"]) == res["rounds"] == 1
    # the load-independent figures: busier process's CPU a record against verify CPU x cores
    assert res["verify_cpu_us"] > 0
    if not sys.platform.startswith("linux"):  # the workers' CPU comes from /proc
        assert res["worker_cpu_us_per_record"] is None and res["cpu_ratio_to_verify_bound"] is None
        return
    assert res["cpu_ratio_to_verify_bound"] == round(
        res["verify_cpu_us"] / (2 * max(res["main_cpu_us_per_record"], res["worker_cpu_us_per_record"])), 3)
    assert res["cpu_ratio_one_core"] == round(res["verify_cpu_us"] / res["main_cpu_us_per_record_one_core"], 3)


def test_the_median_round_is_reported_whole():
    from pen.ingest_bench import _median_round
    rounds = [(100, 400), (300, 400), (90, 100)]  # ratios 0.25, 0.75, 0.9
    assert _median_round(rounds) == (300, 400)  # its own two figures, not medians taken apart
    assert _median_round([(5, 10)]) == (5, 10)


def test_the_stream_keeps_more_signatures_here_when_it_waited_for_a_worker(payments):
    from pen.verifypool import KEEP_STEP, initial_keep
    base, recs = payments
    triples = _signers(base, recs)[:300]
    # the first batch waits half a second, the second a millisecond (under half a chunk: hold), the third not at all
    ticks = iter([0.0, 0.5, 1.0, 1.001, 2.0, 2.0])
    p = ParallelVerifier(1, clock=lambda: next(ticks))
    try:
        assert abs(p.keep - initial_keep(1)) < 1e-9 and 0.15 < p.keep < 0.35
        for want in (initial_keep(1) + KEEP_STEP, initial_keep(1) + KEEP_STEP, initial_keep(1)):
            s = p.collect()
            for t in triples:
                s.append(t)
            assert p.all_valid(s) and abs(p.keep - want) < 1e-9
        s = p.collect()  # a bad signature in the stream is still found
        for i, (pk, msg, sig) in enumerate(triples):
            s.append((pk, msg + b"x", sig) if i == 299 else (pk, msg, sig))
        ticks = iter([0.0, 0.0])
        assert p.all_valid(s) is False
    finally:
        p.close()


def test_the_bound_on_many_cores_checks_every_signature(pool, payments):
    from pen.ingest_bench import verify_rate_cores
    from pen.verifypool import ParallelVerifier
    base, recs = payments
    triples = _signers(base, recs)[:200]
    two = ParallelVerifier(2)
    try:
        assert two.workers_valid(triples)
        bad = list(triples)
        pk, msg, sig = bad[150]  # in the second worker's share
        bad[150] = (pk, msg + b"x", sig)
        assert two.workers_valid(bad) is False
    finally:
        two.close()
    assert verify_rate_cores(triples, 2, rounds=1) > 0


def test_cmd_json_shape(capsys, monkeypatch):
    import pen.ingest_bench as ib
    monkeypatch.setattr(ib, "run_ingest_bench", lambda db=None: run_ingest_bench(tokens=30, rounds=1,
                                                                               batch_sizes=(10,)))
    assert cmd(type("A", (), {"json": True, "db": None, "single": False})()) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"records_per_s", "verify_per_s", "ratio_to_verify_bound", "ratio_one_core", "per_batch_records_per_s",
            "cores", "database"} <= set(out)


def test_single_record_posts_over_http_are_all_taken_with_their_receipts():
    from pen.ingest_bench import run_single_bench
    res = run_single_bench(posts=40, clients=1, connections=4)
    assert res["receipts"] == 40 and res["posts_per_s"] > 0 and res["posts_per_s_one_commit_each"] > 0
    assert res["node_cpu_us_per_post"] > 0


@pytest.mark.postgres
def test_bench_on_postgresql(pg_server):
    res = run_ingest_bench(tokens=30, rounds=1, cores=1, db=pg_server + "/postgres", batch_sizes=(10,))
    assert res["database"] == "postgresql" and res["records"] == 90 and res["records_per_s"] > 0
    import psycopg
    with psycopg.connect(pg_server + "/postgres") as c:  # every bench database dropped after
        assert c.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'pen_bench_%'").fetchone()[0] == 0


@pytest.mark.postgres
def test_postgres_parallel_path_rolls_back_to_the_savepoint(pg_url, pool, payments):
    from pen.pgstore import PostgresCTB
    base, recs = payments
    s = PostgresCTB(pg_url)
    s.submit([r.raw for r in base])
    s.verifier = pool
    before = s.state_digest()
    raws = [r.raw for r in recs[:200]]
    raws[120] = forge(recs[120])
    with pytest.raises(BatchRejected) as e:
        s.submit(raws)
    assert e.value.index == 120 and e.value.verdict.reason == "bad-signature"
    assert s.state_digest() == before
    s.submit([r.raw for r in recs])
    plain = SQLiteCTB(":memory:")
    plain.submit([r.raw for r in base + recs])
    assert s.state_digest() == plain.state_digest()


def test_a_stream_left_unfinished_by_a_rejected_batch_does_not_leak_into_the_next(tmp_path, pool, payments):
    """collect() ships signatures while the validator runs; a batch rejected
    for another reason never asks for the answers. The next batch must not
    read them as its own: a bad signature after it is still found, and a
    good batch still passes."""
    base, recs = payments
    fast = fresh(tmp_path, "b", base, pool)
    uses = [r for r in recs if r.type == 10][:80]
    with pytest.raises(BatchRejected):
        fast.submit([r.raw for r in recs[:200]] + [r.raw for r in uses[-1:]] + [b"\x63junk"])
    raws = [r.raw for r in recs[:300]]
    raws[200] = forge(recs[200])
    with pytest.raises(BatchRejected) as e:
        fast.submit(raws)
    assert (e.value.index, e.value.verdict.reason) == (200, "bad-signature")
    fast.submit([r.raw for r in recs[:300]])
    assert fast.count() == len(base) + 300


def test_a_stream_checks_every_signature_wherever_it_goes(pool, payments):
    """Chunks shipped to the worker, chunks kept here, and the tail under a chunk."""
    from pen.verifypool import STREAM_CHUNK
    base, recs = payments
    triples = _signers(base, recs)[:6 * STREAM_CHUNK + 7]
    for bad_at in (0, 4 * STREAM_CHUNK + 1, 5 * STREAM_CHUNK - 1, len(triples) - 1):
        s = pool.collect()
        for i, (pk, msg, sig) in enumerate(triples):
            s.append((pk, msg + (b"x" if i == bad_at else b""), sig))
        assert pool.all_valid(s) is False, bad_at
    s = pool.collect()
    for t in triples:
        s.append(t)
    ran = []
    assert pool.all_valid(s, lambda: ran.append(1)) is True and ran == [1]


def test_phases_add_up_and_leave_the_signature_check_as_it_was(payments, tmp_path):
    from pen.ingest_bench import ingest_phases
    res = ingest_phases(tokens=60, batch=50)
    us = res["us_per_record"]
    assert set(us) == {"parse", "lookups", "rules", "write", "commit", "total", "verify"}
    assert all(us[k] > 0 for k in ("parse", "write", "total", "verify"))
    assert abs(sum(us[k] for k in ("parse", "lookups", "rules", "write", "commit")) - us["total"]) < 0.5
    assert res["ceiling_ratio"] == round(us["verify"] / (us["verify"] + us["total"]), 3)
    # the run answered True for every signature; afterwards a forged one is refused again
    base, recs = payments
    s = fresh(tmp_path, "after", base)
    with pytest.raises(BatchRejected) as e:
        s.submit([forge(recs[0])])
    assert e.value.verdict.reason == "bad-signature"


def test_the_store_keeps_a_page_cache_and_a_wal_sized_for_random_ids(tmp_path):
    from pen.store import CACHE_KIB, WAL_CHECKPOINT_PAGES
    s = SQLiteCTB(tmp_path / "c.sqlite")
    assert s.db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    assert s.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_PAGES
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: every commit still syncs the WAL
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_grown_bench_compares_the_store_settings_with_sqlite_defaults():
    from pen.ingest_bench import run_grown_bench
    res = run_grown_bench(grown=2000, tokens=30, batch=30)
    assert res["grown"] == 2000 and res["records"] == 90
    for k in ("store", "sqlite_defaults"):
        assert res[k]["records_per_s"] > 0 and res[k]["cpu_us_per_record"] > 0
