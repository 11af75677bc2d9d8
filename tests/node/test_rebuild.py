"""A CTB written under other rules derives its state again (pen.store:
ctb.RULES_VERSION, SQLStore.rebuild_state): an upgraded node must not decide
with state an older validator derived. Records the rules now refuse are set
aside, never lost. Both stores (PostgreSQL on loopback, see conftest.py)."""
import pytest

from pen.pgstore import PostgresCTB
from pen.samples import economy
from pen.store import SQLiteCTB, RULES_KEY, SCHEMA_VERSION
from pen_protocol import cbor, ctb


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def opener(request, tmp_path):
    opened = []

    def open_():
        if request.param == "sqlite":
            s = SQLiteCTB(tmp_path / "c.sqlite", clock=lambda: 1795000000)
        else:
            s = PostgresCTB(request.getfixturevalue("pg_url"), clock=lambda: 1795000000)
        opened.append(s)
        return s
    yield open_
    for s in opened:
        try:
            s.close()
        except Exception:
            pass


def reference(tmp_path, raws):
    ref = SQLiteCTB(tmp_path / "ref.sqlite")
    ref.submit(raws)
    return ref


def written_by_an_older_pen(s, sql, args=()):
    """Change the file as an older validator could have left it, and drop
    the rules' version it would not have recorded."""
    s._begin()
    s._exec(sql, args)
    s._exec("DELETE FROM local WHERE key=?", (RULES_KEY,))
    s._commit()


def test_a_fresh_ctb_records_the_rules_it_derives_under(opener):
    s = opener()
    assert s.local_get(RULES_KEY) == str(ctb.RULES_VERSION) and s.schema_version() == SCHEMA_VERSION


def test_state_derived_under_other_rules_is_derived_again_on_open(opener, tmp_path):
    _, ordered, n = economy()
    raws = [r.raw for r in ordered]
    s = opener()
    s.submit(raws)
    good = s.state_digest()
    token = b"T" + n["issue"].fields[0]
    stale = ctb.MemoryState().get(token) or [b"\x00" * 4, 10 ** 9, 0, b"", None, [], []]
    written_by_an_older_pen(s, "UPDATE state SET value=? WHERE key=?", (cbor.dumps(stale), token))
    assert s.state_digest() != good  # the old validator's token: a billion credits
    s.close()
    again = opener()
    assert again.state_digest() == good == reference(tmp_path, raws).state_digest()
    assert again.local_get(RULES_KEY) == str(ctb.RULES_VERSION)
    assert again.set_aside() == [] and again.count() == len(ordered) + 1  # the conflict evidence kept


def test_the_same_rules_do_not_rebuild_on_every_open(opener, monkeypatch):
    _, ordered, n = economy()
    s = opener()
    s.submit([r.raw for r in ordered])
    s.close()
    calls = []
    monkeypatch.setattr(SQLiteCTB, "rebuild_state", lambda self, progress=None: calls.append(1))
    monkeypatch.setattr(PostgresCTB, "rebuild_state", lambda self, progress=None: calls.append(1))
    opener()
    assert calls == []


def test_a_record_the_rules_refuse_is_set_aside_with_what_depended_on_it(opener, tmp_path):
    # an older Pen took a proposal whose signature does not verify (ids cover the content, not the
    # signature); everything that leans on it goes with it, and nothing is deleted
    _, ordered, n = economy()
    s = opener()
    s.submit([r.raw for r in ordered])
    bad = bytearray(n["proposal"].raw)
    bad[-1] ^= 1
    written_by_an_older_pen(s, "UPDATE records SET raw=? WHERE id=?", (bytes(bad), n["proposal"].id))
    s.close()
    again = opener()
    aside = {rid: (raw, why) for rid, raw, _, why, rules in again.set_aside()}
    assert aside[n["proposal"].id] == (bytes(bad), "bad-signature: not signed by the proposing council")
    assert aside[n["votation-open"].id][1] == aside[n["issue"].id][1] == "unknown-proposal"  # they named it
    assert aside[n["use"].id][1] == "unknown-token" and n["council"].id not in aside
    assert all(rules == ctb.RULES_VERSION for *_, rules in again.set_aside())
    kept = [raw for _, raw in again.records()]
    assert again.count() == len(kept) == len(ordered) + 1 - len(aside)
    assert n["proposal"].id not in set(again.record_ids())
    # the state is exactly what the records kept derive, in any order
    assert again.state_digest() == reference(tmp_path, list(reversed(kept))).state_digest()
    # and the set-aside records can still be read back, byte for byte
    assert {rid for rid, raw, *_ in again.set_aside() if raw == bytes(bad)} == {n["proposal"].id}


def test_a_rebuild_cut_short_leaves_the_ctb_as_it_was_and_runs_again(opener, tmp_path, monkeypatch):
    _, ordered, n = economy()
    raws = [r.raw for r in ordered]
    s = opener()
    s.submit(raws)
    good = s.state_digest()
    written_by_an_older_pen(s, "DELETE FROM state WHERE key=?", (b"T" + n["issue"].fields[0],))
    broken = s.state_digest()
    s.close()
    real = ctb.apply_batch

    def power_cut(*a, **kw):
        real(*a, **kw)
        raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(ctb, "apply_batch", power_cut)
    with pytest.raises(KeyboardInterrupt):
        opener()
    monkeypatch.setattr(ctb, "apply_batch", real)
    monkeypatch.setattr(SQLiteCTB, "_check_rules", lambda self: None)  # look without rebuilding
    monkeypatch.setattr(PostgresCTB, "_check_rules", lambda self: None)
    s = opener()
    assert s.state_digest() == broken and s.local_get(RULES_KEY) is None  # the cut left it as it was
    s.close()
    monkeypatch.undo()
    s = opener()
    assert s.state_digest() == good != broken and s.count() == len(ordered) + 1
