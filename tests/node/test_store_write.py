"""The SQLite store writes a batch as a few INSERTs of many VALUES each
(pen.store.ROWS_PER_INSERT rows a statement): it must store exactly what
one row per statement stores, in acceptance order, and a batch that fails
between two of its statements must leave nothing behind."""
import pytest

from pen.ingest_bench import workload
from pen.store import SQLiteCTB, SQLStore, ROWS_PER_INSERT
from pen_protocol import ctb


class RowByRow(SQLiteCTB):
    """The store as it wrote before: an executemany of one row a statement."""
    _insert_records = SQLStore._insert_records
    _put_state = SQLStore._put_state


class FailsOnSecondStatement(SQLiteCTB):
    """A write that dies after its first multi-row INSERT went in (a full
    disk, an I/O error): once armed, the second statement raises."""
    armed = False

    def _many_values(self, sql, rows):
        for i in range(0, len(rows), ROWS_PER_INSERT):
            if self.armed:
                self.statements += 1
                if self.statements == 2:
                    raise OSError("disk full")
            SQLiteCTB._many_values(self, sql, rows[i:i + ROWS_PER_INSERT])


@pytest.fixture(scope="module")
def payments():
    return workload(tokens=150, users=7)  # 450 records: three INSERTs of records in one batch


def stored(s, since):
    return [raw for _, raw in s.records(since)]


@pytest.mark.parametrize("batch", [1, ROWS_PER_INSERT, ROWS_PER_INSERT + 1, 2 * ROWS_PER_INSERT + 3, 450])
def test_many_rows_a_statement_store_what_one_row_a_statement_stores(tmp_path, payments, batch):
    base, recs = payments
    raws = [r.raw for r in recs]
    fast, slow = SQLiteCTB(tmp_path / "fast.sqlite", clock=lambda: 5.0), RowByRow(tmp_path / "slow.sqlite",
                                                                                     clock=lambda: 5.0)
    for s in (fast, slow):
        s.submit([r.raw for r in base])
        for i in range(0, len(raws), batch):
            s.submit(raws[i:i + batch])
    assert fast.count() == slow.count() == len(base) + len(raws)
    # same rows under the same seq numbers (acceptance order), same state bytes
    assert list(fast.records()) == list(slow.records())
    assert fast.state_digest() == slow.state_digest()
    assert list(fast.db.execute("SELECT key, value FROM state ORDER BY key")) == \
        list(slow.db.execute("SELECT key, value FROM state ORDER BY key"))
    assert list(fast.db.execute("SELECT seq, id, type, token, received FROM records ORDER BY seq")) == \
        list(slow.db.execute("SELECT seq, id, type, token, received FROM records ORDER BY seq"))


def test_a_batch_is_stored_in_acceptance_order_across_its_statements(tmp_path, payments):
    base, recs = payments
    s = SQLiteCTB(tmp_path / "c.sqlite")
    s.submit([r.raw for r in base])
    top = s._one("SELECT max(seq) FROM records", ())[0]
    shuffled = [r.raw for r in reversed(recs)]  # the validator takes them in type order: issues, set-users, uses
    s.submit(shuffled)
    want = sorted(recs, key=lambda r: (r.type, shuffled.index(r.raw)))
    assert stored(s, top) == [r.raw for r in want]
    seqs = [seq for seq, _ in s.records(top)]
    assert seqs == list(range(top + 1, top + 1 + len(recs)))


def test_a_batch_failing_between_its_inserts_leaves_nothing_and_the_store_goes_on(tmp_path, payments):
    base, recs = payments
    raws = [r.raw for r in recs]
    s = FailsOnSecondStatement(tmp_path / "c.sqlite")
    s.submit([r.raw for r in base])
    count, digest = s.count(), s.state_digest()
    s.armed, s.statements = True, 0
    with pytest.raises(OSError, match="disk full"):
        s.submit(raws)  # its first 199 records went in before the second INSERT failed
    assert s.count() == count and s.state_digest() == digest
    assert s.records_by_id([r.id for r in recs]) == {}
    s.armed = False  # the disk has room again
    s.submit(raws)
    assert s.count() == count + len(raws)
    ref = SQLiteCTB(tmp_path / "ref.sqlite")
    ref.submit([r.raw for r in base])
    ref.submit(raws)
    assert s.state_digest() == ref.state_digest()


def test_a_deleted_state_value_is_gone_after_a_multi_row_write(tmp_path):
    # a put of None deletes its key (ctb: an account back at zero); the
    # deletes ride beside the multi-row upsert
    s = SQLiteCTB(tmp_path / "c.sqlite")
    ov = ctb.Overlay(s)
    ov.kv = {b"A" + bytes([i]): i + 1 for i in range(ROWS_PER_INSERT + 5)}
    s._begin()
    s._write(ov)
    s._commit()
    assert s.get(b"A\x07") == 8 and len(list(s.state_prefix(b"A"))) == ROWS_PER_INSERT + 5
    ov.kv = {b"A\x07": None, b"A\x08": 100}
    s._begin()
    s._write(ov)
    s._commit()
    assert s.get(b"A\x07") is None and s.get(b"A\x08") == 100
    assert len(list(s.state_prefix(b"A"))) == ROWS_PER_INSERT + 4


def test_ids_held_names_exactly_the_held_ones_past_one_query(tmp_path, payments):
    base, recs = payments
    s = SQLiteCTB(tmp_path / "c.sqlite")
    s.submit([r.raw for r in base])
    s.submit([r.raw for r in recs[:300]])
    asked = [r.id for r in recs] + [bytes(16), b"\xff" * 16]  # 452 ids, then 1,100: past 500 a query
    assert s.ids_held(asked) == {r.id for r in recs[:300]}
    assert s.ids_held(asked * 2 + [r.id for r in base]) == {r.id for r in recs[:300]} | {r.id for r in base}
    assert s.ids_held([]) == set()


def test_the_decoded_state_cache_stays_bounded_and_right(tmp_path, payments, monkeypatch):
    import pen.store as S
    monkeypatch.setattr(S, "STATE_CACHE", 40)  # a batch of 60 records touches more keys than that
    base, recs = payments
    raws = [r.raw for r in recs]
    s, ref = SQLiteCTB(tmp_path / "c.sqlite"), RowByRow(tmp_path / "ref.sqlite")
    s.submit([r.raw for r in base])
    ref.submit([r.raw for r in base])
    for i in range(0, len(raws), 60):
        s.submit(raws[i:i + 60])
        assert len(s._cache) <= 40
        for k, v in s._cache.items():
            assert v == s.get(k)  # what the cache says is what the database holds
    ref.submit(raws)
    assert s.state_digest() == ref.state_digest()


def test_phases_report_the_sql_floor_of_the_same_rows(payments):
    from pen.ingest_bench import batch_rows, ingest_phases
    base, recs = payments
    rows = batch_rows(base, recs, 100)
    assert len(rows) == 5 and [len(r[0]) for r in rows] == [100, 100, 100, 100, 50]
    raws = [r.raw for r in recs]
    for k, b in enumerate(rows):  # each batch's records as stored: in type order, then batch order
        part = raws[100 * k:100 * k + 100]
        assert [row[3] for row in b[0]] == sorted(part, key=lambda raw: (raw[0], part.index(raw)))
    assert all(b[1] for b in rows)  # every batch writes state
    res = ingest_phases(tokens=60, batch=50)
    floor = res["sql_floor_us_per_record"]
    assert set(floor) == {"executemany", "values"} and all(v > 0 for v in floor.values())
    python = res["python_floors_us_per_record"]
    assert set(python) == {"parse", "rules", "encode"} and all(v > 0 for v in python.values())
