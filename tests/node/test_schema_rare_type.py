"""Schema 4: the type index keeps the rare types only (payments are most of a
CTB's records and no query asks for them by type). A CTB made by schema 3
opens, migrates and gives the same answers; the queries by a rare type still
use an index; nothing a payment needs reads the dropped one."""
import sqlite3

import psycopg
import pytest

from pen import pgstore, store as S
from pen.pgstore import PostgresCTB
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import identity, records as R


def test_the_schema_names_the_payment_types_of_the_protocol():
    assert S.PAYMENT_TYPES == tuple(identity.TOKEN_TYPES) == tuple(range(8, 12))  # what BETWEEN 8 AND 11 says
    assert S.RARE_TYPES in S.MIGRATIONS[3] and S.RARE_TYPES in pgstore.MIGRATIONS[3]


def answers(s, ordered):
    refs = sorted({r.fields[0] for r in ordered if r.type in identity.TOKEN_TYPES})
    return {
        "digest": s.state_digest(),
        "count": s.count(),
        "by_type": s.counts_by_type(),
        "all": list(s.records()),
        "since": list(s.records(since=5)),
        "by_each_type": {t: list(s.records(types=[t])) for t in R.NAMES},
        "rare_and_payments": list(s.records(types=[R.MEMBER, R.USE, R.COUNCIL])),
        "histories": [s.token_history(ref) for ref in refs],
        "by_id": [s.get_record(r.id) for r in ordered],
    }


def made_by_schema_3(monkeypatch, module, open_store):
    """A CTB written by this Pen with its schema held at version 3."""
    _, ordered, _ = economy()
    with monkeypatch.context() as m:
        m.setattr(module, "SCHEMA_VERSION", 3)
        s = open_store()
        assert s.schema_version() == 3
        s.submit([r.raw for r in ordered])
        want = answers(s, ordered)
        s.close()
    assert want["by_type"]["use"] and want["by_type"]["member"] and want["histories"]
    return ordered, want


def test_a_sqlite_ctb_of_schema_3_migrates_and_answers_alike(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    ordered, want = made_by_schema_3(monkeypatch, S, lambda: SQLiteCTB(path, clock=lambda: 1795000000))
    s = SQLiteCTB(path, clock=lambda: 1795000000)
    assert s.schema_version() == 4
    assert answers(s, ordered) == want
    names = {n for (n,) in s.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "records_type" not in names and "records_rare_type" in names
    # the rare-type index holds no payment
    held = s.db.execute("SELECT COUNT(*) FROM records INDEXED BY records_rare_type WHERE " + S.RARE_TYPES).fetchone()
    number = {name: t for t, name in R.NAMES.items()}
    assert held[0] == sum(n for name, n in want["by_type"].items() if number[name] not in S.PAYMENT_TYPES) > 0
    s.close()


def query_of(s, **kw):
    seen = []
    inner = s._all

    def spy(sql, args):
        seen.append((sql, list(args)))
        return inner(sql, args)
    s._all = spy
    list(s.records(**kw))
    s._all = inner
    return seen[0]


def test_sqlite_asks_the_rare_type_index_for_rare_types_only(tmp_path):
    s = SQLiteCTB(tmp_path / "c.sqlite")
    for types, index in (([R.MEMBER], "records_rare_type"), ([R.VOTE, R.VOTATION_CLOSE, R.CONFLICT],
                                                             "records_rare_type"), ([R.USE], None)):
        sql, args = query_of(s, types=types)
        plan = " ".join(row[-1] for row in s.db.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert (index in plan) if index else ("records_rare_type" not in plan), plan
    s.close()


def test_an_old_sqlite_file_with_a_failing_migration_keeps_schema_3(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    made_by_schema_3(monkeypatch, S, lambda: SQLiteCTB(path))
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE records_rare_type (x)")  # the new index's name taken: the migration fails
    db.commit()
    db.close()
    with pytest.raises(sqlite3.OperationalError):
        SQLiteCTB(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='records_type'").fetchone()[0] == 1
    db.close()


@pytest.mark.postgres
def test_a_postgres_ctb_of_schema_3_migrates_and_answers_alike(pg_url, monkeypatch):
    ordered, want = made_by_schema_3(monkeypatch, pgstore, lambda: PostgresCTB(pg_url, clock=lambda: 1795000000))
    s = PostgresCTB(pg_url, clock=lambda: 1795000000)
    assert s.schema_version() == 4
    assert answers(s, ordered) == want
    sql, args = query_of(s, types=[R.MEMBER])
    with s.db.transaction():
        s.db.execute("SET LOCAL enable_seqscan = off")
        plan = " ".join(r[0] for r in s.db.execute("EXPLAIN " + s._q(sql), args))
    assert "records_rare_type" in plan, plan
    s.close()
