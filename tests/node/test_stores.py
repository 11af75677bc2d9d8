"""SQLiteCTB and PostgresCTB: one interface, one batch logic, one digest.

Every test here runs against both stores (the PostgreSQL ones start a real
server on loopback, see conftest.py)."""
import psycopg
import pytest

from pen import build as B
from pen.pgstore import PostgresCTB, MIGRATIONS as PG_MIGRATIONS
from pen.samples import economy
from pen.store import SQLiteCTB, BatchRejected, SCHEMA_VERSION
from pen_protocol import ctb, records as R


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteCTB(tmp_path / "c.sqlite", clock=lambda: 1795000000)
    else:
        s = PostgresCTB(request.getfixturevalue("pg_url"), clock=lambda: 1795000000)
    yield s
    s.close()


def test_same_records_same_digest_as_sqlite(store, tmp_path):
    _, ordered, _ = economy()
    ref = SQLiteCTB(tmp_path / "ref.sqlite")
    ref.submit([r.raw for r in ordered])
    # the other store gets them in reverse order, in two batches
    raws = [r.raw for r in reversed(ordered)]
    store.submit(raws[:8] + raws[8:])
    assert store.count() == ref.count() == len(ordered) + 1  # + the CONFLICT evidence
    assert store.state_digest() == ref.state_digest()
    assert sorted(store.record_ids()) == sorted(ref.record_ids())
    assert dict(store.counts_by_type()) == dict(ref.counts_by_type())


def test_rejected_batch_changes_nothing_and_names_the_record(store):
    k, ordered, n = economy()
    store.submit([r.raw for r in ordered[:5]])
    before = store.state_digest()
    # a copy with a broken signature of a record already held is a duplicate
    # (ids cover the content, not the signature), so break a new one
    forged = bytearray(ordered[5].raw)
    forged[-1] ^= 1
    with pytest.raises(BatchRejected) as e:
        store.submit([ordered[1].raw, bytes(forged), b"\x63"])
    assert e.value.index == 1 and e.value.verdict.reason == "bad-signature"
    with pytest.raises(BatchRejected) as e:
        store.submit([ordered[5].raw, b"\x63"])
    assert e.value.index == 1 and e.value.verdict.reason == "unknown-type"
    assert store.state_digest() == before and store.count() == 5


def test_resubmitting_a_batch_is_a_no_op(store):
    _, ordered, _ = economy()
    raws = [r.raw for r in ordered]
    store.submit(raws)
    digest, count = store.state_digest(), store.count()
    verdicts = store.submit(raws)
    assert {v.code for v in verdicts} == {ctb.DUPLICATE}
    assert (store.state_digest(), store.count()) == (digest, count)


def test_listeners_see_each_committed_record_once(store):
    _, ordered, _ = economy()
    seen = []
    store.listeners.append(lambda recs: seen.extend(r.id for r in recs))
    store.submit([r.raw for r in ordered])
    store.submit([r.raw for r in ordered])
    with pytest.raises(BatchRejected):
        store.submit([b"\x63"])
    assert sorted(seen) == sorted(store.record_ids())


def test_reads_match_between_stores(store, tmp_path):
    _, ordered, n = economy()
    ref = SQLiteCTB(tmp_path / "ref.sqlite")
    for s in (store, ref):
        s.submit([r.raw for r in ordered])
    tok = n["issue"].fields[0]
    assert store.token_history(tok) == ref.token_history(tok)
    assert list(store.state_prefix(b"T")) == list(ref.state_prefix(b"T"))
    assert [raw for _, raw in store.records(types=[R.USE])] == [raw for _, raw in ref.records(types=[R.USE])]
    ids = [n["use"].id, n["vote"].id, b"\x00" * 16]
    assert store.records_by_id(ids) == ref.records_by_id(ids) == {n["use"].id: n["use"].raw,
                                                                   n["vote"].id: n["vote"].raw}
    assert store.get(b"G") == ref.get(b"G")
    assert store.get_record(n["use"].id) == n["use"].raw


def test_local_bookkeeping_is_not_replicated_state(store):
    _, ordered, _ = economy()
    store.submit([r.raw for r in ordered[:3]])
    digest = store.state_digest()
    store.local_set("peer:http://x", "a")
    store.local_set("peer:http://x", "b")
    store.local_set("peer:http://y", 7)
    assert store.local_get("peer:http://x") == "b"
    assert store.local_get("nothing", "d") == "d"
    assert [tuple(r) for r in store.local_prefix("peer:")] == [("peer:http://x", "b"), ("peer:http://y", "7")]
    kid = b"\x01\x02\x03\x04"
    assert [store.next_serial(kid, "T") for _ in range(3)] == [1, 2, 3]
    assert store.state_digest() == digest


def test_schema_version_is_current(store):
    assert store.schema_version() == SCHEMA_VERSION


@pytest.mark.postgres
def test_postgres_migrates_an_old_database_keeping_its_records(pg_url):
    _, ordered, _ = economy()
    r = ordered[0]
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("CREATE TABLE pen_schema (version INTEGER NOT NULL)")
        c.execute("INSERT INTO pen_schema VALUES (1)")
        for stmt in PG_MIGRATIONS[0].split(";"):
            if stmt.strip():
                c.execute(stmt)
        c.execute("INSERT INTO records(id, type, token, raw, received) VALUES (%s,%s,%s,%s,0)",
                  (r.id, r.type, None, r.raw))
    s = PostgresCTB(pg_url)
    assert s.schema_version() == SCHEMA_VERSION
    assert s.get_record(r.id) == r.raw
    s.local_set("x", 1)  # the table version 2 added
    assert s.local_get("x") == "1"


@pytest.mark.postgres
def test_postgres_refuses_a_newer_schema(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("CREATE TABLE pen_schema (version INTEGER NOT NULL)")
        c.execute("INSERT INTO pen_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        PostgresCTB(pg_url)


@pytest.mark.postgres
def test_postgres_writers_in_two_connections_stay_consistent(pg_url):
    """Two node processes on one database: batches serialise, nothing is lost
    and the state matches a replay of the records."""
    import threading
    k, ordered, n = economy()
    a, b = PostgresCTB(pg_url), PostgresCTB(pg_url)
    a.submit([r.raw for r in ordered[:-1]])
    hub = k["supply-hub"]
    errors = []

    def writer(s, base):
        try:
            for i in range(5):
                s.submit([B.publication(hub, base + 10 * i + j, "price", b"\x40", {1: j}).raw for j in range(10)])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    ts = [threading.Thread(target=writer, args=(a, 1000)), threading.Thread(target=writer, args=(b, 2000))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    mem = ctb.MemoryState()
    ov, verdicts = ctb.apply_batch(mem, [raw for _, raw in a.records()])
    assert all(v.ok for v in verdicts)
    assert dict(a.state_prefix(b"U")) == {k: v for k, v in ov.kv.items() if k[:1] == b"U"}
    assert a.count() == len(ordered) - 1 + 100


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_second_connection_sees_what_the_first_wrote(tmp_path, kind, request):
    """The decoded-state cache is dropped when another connection (another
    process on the same database) commits: no stale token state."""
    k, ordered, n = economy()
    if kind == "sqlite":
        a, b = SQLiteCTB(tmp_path / "shared.sqlite"), SQLiteCTB(tmp_path / "shared.sqlite")
    else:
        url = request.getfixturevalue("pg_url")
        a, b = PostgresCTB(url), PostgresCTB(url)
    base = ordered[:ordered.index(n["set-user"])]  # up to the issue
    a.submit([r.raw for r in base])
    b.submit([r.raw for r in base])  # duplicates; b has read (and cached) the token state
    a.submit([n["set-user"].raw])  # a makes the token usable
    verdicts = b.submit([n["use"].raw])  # b must see the SET_USER a wrote
    assert verdicts[0].code == ctb.ACCEPTED
    assert ctb.token_state(b.get(b"T" + n["issue"].fields[0])) == ctb.USED
