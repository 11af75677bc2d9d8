"""The CTB on disk: SQLite (stdlib) in WAL mode, the embedded default.

Two tables hold the CTB: `records` (every accepted record, exact bytes, in
acceptance order) and `state` (the validator's derived state, CBOR values).
Every batch is validated by pen_protocol.ctb over an overlay and written in one
transaction, so a crash leaves either the whole batch or none of it, and a
rejected batch writes nothing. `local` holds this node's own bookkeeping
(serial counters, sync marks), which is not part of the replicated CTB.

`SQLStore` is everything that does not depend on the database: the batch
logic, the reads, the digest. `SQLiteCTB` here and `pen.pgstore.PostgresCTB`
supply a connection, their placeholders, transactions and migrations.
"""
import gc
import hashlib
import sqlite3
import threading
import time
from itertools import chain
from pathlib import Path

from pen import fastparse, sqlwal
from pen_protocol import cbor, ctb, records as R, sign
from pen_protocol.identity import TOKEN_TYPES, record_id

SCHEMA_VERSION = 4

# Each entry migrates from version i to i+1. Never edit a released entry.
MIGRATIONS = [
    """
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        type INTEGER NOT NULL,
        token BLOB,
        raw BLOB NOT NULL,
        received REAL NOT NULL
    );
    CREATE INDEX records_token ON records(token);
    CREATE INDEX records_type ON records(type);
    CREATE TABLE state (key BLOB PRIMARY KEY, value BLOB NOT NULL);
    """,
    """
    CREATE TABLE local (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE set_aside (
        id BLOB PRIMARY KEY,
        raw BLOB NOT NULL,
        seq INTEGER NOT NULL,
        reason TEXT NOT NULL,
        rules INTEGER NOT NULL,
        at REAL NOT NULL
    );
    """,
    # 4: the type index keeps only the rare types (councils, memberships,
    # votations, proposals, publications, conflicts), not the payments
    # (ISSUE, SET_USER, USE, ACCOUNTED: identity.TOKEN_TYPES, nearly every
    # record): the queries by type ask for rare types (SQLStore.records,
    # RARE_TYPES), and a payment's row is kept in three B-trees instead of
    # four (~0.35 us a record of CPU, pen bench ingest --phases). Listing
    # payments by type scans the records table, as counting them does.
    """
    DROP INDEX records_type;
    CREATE INDEX records_rare_type ON records(type) WHERE type NOT BETWEEN 8 AND 11;
    """,
]

# The partial index's condition (MIGRATIONS[3]), repeated in a query so the
# database may use the index (SQLite and PostgreSQL both take a condition
# that appears word for word in the query as proof the index covers it).
# (BETWEEN, not NOT IN (8, 9, 10, 11): SQLite builds a NOT IN list's table
# each time a statement runs, 1.5 us for each row inserted one a statement.)
RARE_TYPES = "type NOT BETWEEN 8 AND 11"
# the payments the index leaves out: the protocol's token types, which the
# schema's literal 8..11 must match (tests/node/test_schema_rare_type.py)
PAYMENT_TYPES = TOKEN_TYPES

# `local` key: the ctb.RULES_VERSION the state was derived under
RULES_KEY = "ctb.rules"
REPLAY_BATCH = 500


# The batch's two writes, as (head, one row's values, tail): SQLStore runs
# them a row at a time, SQLiteCTB with many rows' VALUES in one statement.
RECORD_ROWS = ("INSERT INTO records(id, type, token, raw, received) VALUES ", "(?,?,?,?,?)", "")
STATE_ROWS = ("INSERT INTO state(key, value) VALUES ", "(?,?)", " ON CONFLICT(key) DO UPDATE SET value=excluded.value")
FRESH_STATE_ROWS = ("INSERT INTO state(key, value) VALUES ", "(?,?)", "")


class GuessedWrong(Exception):
    """A batch's write found a guess of its batch view wrong (see
    SQLStore._guessing_new): the batch is validated again without it."""


class BatchRejected(Exception):
    """A batch with a rejected record: nothing was stored."""

    def __init__(self, index, verdict, verdicts=None):
        Exception.__init__(self, "record %d rejected: %s%s" % (
            index, verdict.reason, (" (" + verdict.detail + ")") if verdict.detail else ""))
        self.index = index
        self.verdict = verdict
        self.verdicts = verdicts  # every record's verdict, when known: callers set all refused aside at once


# Batches of fewer records look their ids up before validating (one query,
# no savepoint: the statements a group of single-record uploads makes stay
# as few as they were); from this many, the ids (and the tokens the batch
# issues) are taken as new (SQLStore._guessing_new), which saves ~1.2 us a
# record on large batches.
GUESS_NEW_FROM = 32

# Decoded state values kept between batches (councils, proposals, accounts:
# the keys every payment touches). Dropped whole when full: ~1 KB a value,
# so at most a few MB.
STATE_CACHE = 4096

ISSUE = R.ISSUE
_MISSING = object()  # _BatchView.get's "not fetched" (None is a value: absent)


# Python's cycle collector is paused while a batch runs (submit_follow). A
# batch makes tens of thousands of lists, Records and Verdicts, nearly all
# freed by their reference counts, yet they count toward the collector's
# thresholds: a 500-record batch triggers ~20 young collections and, every
# few batches, a full one over the process's whole heap (~7 ms in pen bench
# ingest, a run's spikes of ~0.8 us a record). Paused, a batch is followed
# by one young collection (at the next allocation after it) and the full
# ones come far less often: ~0.3 us a record of CPU (docs/node.md). Nothing is
# kept from the collector: a cycle made in a batch is collected after it.
# A count, under a lock: concurrent batches (threads of a node) resume the
# collector when the last one ends, and only if it was on before the first.
_GC_LOCK = threading.Lock()
_gc_paused = [0, False]  # batches running, whether the collector was on before the first


def _pause_gc():
    with _GC_LOCK:
        if not _gc_paused[0]:
            _gc_paused[1] = gc.isenabled()
            gc.disable()
        _gc_paused[0] += 1


def _resume_gc():
    with _GC_LOCK:
        _gc_paused[0] -= 1
        if not _gc_paused[0] and _gc_paused[1]:
            gc.enable()


def _parsed(raws):
    """Records parsed once (the validator takes Records as they are; the
    payments by pen.fastparse, the same Records faster); a raw that does not
    parse stays raw so the validator reports its reason."""
    out = []
    parse = fastparse.parse
    for raw in raws:
        if not isinstance(raw, R.Record):
            try:
                raw = parse(raw)
            except R.RecordError:
                pass
        out.append(raw)
    return out


def _made_here(signer):
    """A signature check for records this process has just signed with
    signer (pen.keys.Signer): a signature by its key is compared with the
    one signer makes over the same bytes (Ed25519 signing is deterministic,
    RFC 8032 5.1.6), ~15 us instead of a ~41 us verify, as much as a
    receipt's whole validation. Any other signature, or one that differs
    (another valid signature by the same key), is verified."""
    if signer is None:
        return None
    key = signer.public_key

    def verify(pk, msg, sig):
        return (bytes(pk) == key and signer(msg) == bytes(sig)) or sign.verify(pk, msg, sig)
    return verify


class _BatchView:
    """The State one batch is validated against: the store, with the
    batch's token states fetched in one query instead of one per record.
    A large batch (see SQLStore._guessing_new) is validated on two guesses
    until look_up() checks them: its ids are new, and so is the token of
    each of its ISSUEs that the decoded-state cache does not hold (the
    `fresh` state keys, written by a plain INSERT)."""

    def __init__(self, store, recs, recheck=True):
        self.store = store
        recs = [r for r in recs if isinstance(r, R.Record)]
        self.ids = ids = [r.id for r in recs]
        keys = {b"T" + r.token_ref for r in recs if r.token_ref is not None}
        issued = {b"T" + r.token_ref for r in recs if r.type == ISSUE}  # (an ISSUE has a token ref)
        self.absent = set(ids)
        self.fresh = set()
        self.looked_up = False
        if store._held_errors and len(ids) >= GUESS_NEW_FROM:
            self.state = store._state_many(keys - issued, recheck)  # (recheck first: it may drop the cache)
            cache = store._cache
            for k in issued:
                if k in cache:
                    self.state[k] = cache[k]
                else:
                    self.state[k] = None
                    self.fresh.add(k)
        else:
            self.state = store._state_many(keys, recheck)
            self.look_up()

    def look_up(self):
        """Which of the batch's ids the CTB holds (one query per 500), and
        the fresh keys' states: no longer guessed. -> True when a guess was
        wrong (an id held, or a fresh key's state there)."""
        held = self.store.ids_held(self.ids) if self.ids else set()
        self.absent -= held
        there = False
        if self.fresh:
            got = self.store._state_many(self.fresh, False)
            self.state.update(got)
            there = any(v is not None for v in got.values())
            self.fresh = set()
        self.looked_up = True
        return bool(held) or there

    def get(self, key):
        v = self.state.get(key, _MISSING)
        if v is not _MISSING:
            return v
        cache = self.store._cache
        if key in cache:
            return cache[key]
        v = cache[key] = self.store.get(key)
        return v

    def get_record(self, rid):
        if rid in self.absent:
            return None
        return self.store.get_record(rid)


class _Replay:
    """The CTB as the replay of rebuild_state has it so far: the state derived
    from the records before the batch being replayed, and of the records
    table only those (by acceptance order), less any set aside."""

    def __init__(self, store, state, set_aside):
        self.store = store
        self.state = state  # a ctb.MemoryState
        self.set_aside = set_aside
        self.before = 0  # seq of the first record of the batch being replayed

    def get(self, key):
        return self.state.get(key)

    def get_record(self, rid):
        row = self.store._one("SELECT seq, raw FROM records WHERE id=?", (rid,))
        if row is None or row[0] >= self.before or bytes(rid) in self.set_aside:
            return None
        return bytes(row[1])


class SQLStore:
    """The CTB over any SQL database with the four tables above. Subclasses
    provide _one/_all/_many/_exec (SQL written with ? placeholders), _begin (a
    transaction that excludes other writers), _commit, _rollback and
    schema_version(). Byte strings compare as unsigned bytes in both
    databases, so ORDER BY key and ORDER BY id agree and state_digest()
    means the same everywhere."""

    # what the database raises when a batch writes a record id it holds
    # (the records' UNIQUE id): SQLStore._apply then looks the ids up
    _held_errors = ()

    def _init_common(self, clock):
        self.clock = clock
        self._cache = {}  # state key -> decoded value, valid while no one else writes
        # a pen.verifypool.ParallelVerifier to check each batch's signatures
        # on several cores; None checks them one by one in this thread
        self.verifier = None
        # called after each committed batch with the Records it added (the
        # node's sync index follows the store through this)
        self.listeners = []
        # follow-up batches the store refused (submit_follow) and the last
        # reason: a node whose key may not sign receipts shows it here
        self.follow_refused = (0, "")
        # set by _check_rules at open: None, or what a rebuild set aside (a list, maybe empty)
        self.rebuilt = None

    # -- the State interface the validator reads ----------------------------

    def get(self, key):
        row = self._one("SELECT value FROM state WHERE key=?", (key,))
        return cbor.loads(bytes(row[0])) if row else None

    def get_record(self, rid):
        row = self._one("SELECT raw FROM records WHERE id=?", (rid,))
        return bytes(row[0]) if row else None

    # -- writing --------------------------------------------------------------

    def submit(self, raws):
        """Validate and store a batch atomically. Returns the verdicts; raises
        BatchRejected (nothing stored) if any record is rejected."""
        return self.submit_follow(raws, None)[0]

    def submit_follow(self, raws, follow, signed_here=None):
        """submit(), and in the same transaction the records follow(state,
        verdicts) makes from the batch's outcome (a node's ACCOUNTED receipts
        for the USEs it took; state reads the CTB as the batch left it): one
        commit instead of two, which is what a single-record upload waits
        for. If the store refuses any of them, none is kept and the batch
        is stored without them, as if they had been submitted after it.
        signed_here: the Signer follow signs its records with; their
        signatures are checked by signing again (_made_here). Returns
        (verdicts, the follow-up Records stored)."""
        _pause_gc()
        try:
            verdicts, more, added = self._submit_follow(raws, follow, signed_here)
        finally:
            _resume_gc()
        if added:
            for fn in self.listeners:
                fn(added)
        return verdicts, more

    def _submit_follow(self, raws, follow, signed_here):
        self._begin()
        try:
            ov, verdicts = self._apply(_parsed(raws))
            added = list(ov.added)
            more = follow(ov, verdicts) if follow is not None else []
            if more:
                try:  # a refused batch writes nothing (_apply), so no savepoint is needed
                    added += self._apply(more, _made_here(signed_here), recheck=False)[0].added
                except BatchRejected as e:
                    self.follow_refused = (self.follow_refused[0] + 1, str(e))
                    more = []
            self._wrote()
            self._commit()
        except BaseException:
            self._rollback()
            self._cache.clear()
            raise
        return verdicts, more, added

    def _apply(self, recs, verify=None, recheck=True):
        """Validate parsed records over the CTB as this transaction sees it
        and write them; raises BatchRejected, having written nothing of
        them. The decoded-state cache takes the batch's values at once (a
        follow-up batch reads them; a rollback clears the cache). verify:
        the signature check instead of the verifier's; recheck=False skips
        asking whether another connection wrote (a follow-up: this
        transaction has held the write lock since the batch's own check).

        A batch of GUESS_NEW_FROM records or more has its ids taken as new
        (_guessing_new); a smaller one looks them up first."""
        view = _BatchView(self, recs, recheck)
        if view.looked_up:
            ov, verdicts = self._validate(view, recs, verify)
        else:
            ov, verdicts = self._guessing_new(view, recs, verify)
        self._cache_all(ov.kv)
        return ov, verdicts

    def _guessing_new(self, view, recs, verify):
        """_validate with the batch's ids taken as new, without asking the
        CTB which it holds (500 probes of the random-id index a batch, ~0.8
        us a record), and the tokens its ISSUEs make taken as absent (the
        view's fresh keys: ~0.35 us a record of state lookups). A record the
        CTB holds cannot then pass unseen: it is refused by a rule, or a
        rule trips over the CTB it finds (a record it was told is absent),
        or it is written (every record not refused is) and meets the
        records' UNIQUE id. Nor can a token the CTB holds: the ISSUE that
        made its key fresh is refused, or it writes the token, by an INSERT
        that meets the state's key. On any of these the batch goes back to
        its savepoint and, if a guess was wrong, is validated again with the
        truth looked up; if both guesses were right, the refusal or error
        stands. So a batch is stored, or refused, exactly as looking
        everything up first would have it (tests/node/test_held_ids.py)."""
        self._exec("SAVEPOINT batch", ())
        while True:
            try:
                ov, verdicts = self._validate(view, recs, verify)
                break
            except Exception:
                self._exec("ROLLBACK TO SAVEPOINT batch", ())
                if view.looked_up or not view.look_up():
                    self._exec("RELEASE SAVEPOINT batch", ())
                    raise
        self._exec("RELEASE SAVEPOINT batch", ())
        return ov, verdicts

    def _validate(self, view, recs, verify):
        """One validation and write of a batch over view (see _apply)."""
        ov = None
        if self.verifier is not None and verify is None:
            # optimistic: record each signature (a verifier's collect() ships them to its
            # workers as they come), write, check them all at once
            sigs = self.verifier.collect() if hasattr(self.verifier, "collect") else []
            self._exec("SAVEPOINT optimistic", ())
            ov, verdicts = ctb.apply_batch(view, recs, lambda pk, m, sig: sigs.append((pk, m, sig)) or True)
            ok = all(v.code != ctb.REJECTED for v in verdicts)
            clash = []

            def write():
                try:
                    self._write(ov, view.fresh)
                except Exception as e:  # raised once the workers have answered
                    clash.append(e)
            ok = ok and self.verifier.all_valid(sigs, write)
            if clash:
                raise clash[0]
            if not ok:
                self._exec("ROLLBACK TO SAVEPOINT optimistic", ())
                ov = None
            else:
                self._exec("RELEASE SAVEPOINT optimistic", ())
        if ov is None:
            ov, verdicts = ctb.apply_batch(view, recs, verify)
            for i, v in enumerate(verdicts):
                if v.code == ctb.REJECTED:
                    raise BatchRejected(i, v, verdicts)
            self._write(ov, view.fresh)
        return ov, verdicts

    # -- decoded state kept between batches ---------------------------------

    def _cache_all(self, kv):
        """Keep a batch's values; the cache is dropped whole first when they
        would not fit (a batch with more than STATE_CACHE keeps its last)."""
        cache = self._cache
        if len(cache) + len(kv) > STATE_CACHE:
            cache.clear()
        if len(kv) <= STATE_CACHE:
            cache.update(kv)
            return
        for k in list(kv)[-STATE_CACHE:]:
            cache[k] = kv[k]

    def _state_many(self, keys, recheck=True):
        """{key: decoded value or None} for keys, one query per 500."""
        if recheck and self._changed_elsewhere():
            self._cache.clear()
        out = {}
        todo = []
        for k in keys:
            if k in self._cache:
                out[k] = self._cache[k]
            else:
                todo.append(k)
        for i in range(0, len(todo), 500):
            part = todo[i:i + 500]
            got = {bytes(k): v for k, v in self._all(
                "SELECT key, value FROM state WHERE key IN (%s)" % ",".join("?" * len(part)), part)}
            for k in part:
                v = got.get(k)
                out[k] = self._cache[k] = cbor.loads(v) if v is not None else None
        return out

    def _changed_elsewhere(self):
        """True when another connection may have written since the cache was
        filled (then the cache is dropped). Called at the start of a batch,
        inside its transaction."""
        return True

    def _wrote(self):
        """This connection is about to commit a batch (for _changed_elsewhere)."""

    def _write(self, ov, fresh=()):
        """Store a validated batch. fresh: state keys guessed absent (a
        batch view's), inserted without replacing, so a held one fails
        the write (GuessedWrong, or the database's duplicate-key error)."""
        records, put, gone = self._rows(ov, self.clock())
        new = []
        if fresh:
            new = [row for row in put if row[0] in fresh]
            if new:
                put = [row for row in put if row[0] not in fresh]
            if any(k in fresh and self.get(k) is not None for (k,) in gone):
                raise GuessedWrong("a state value guessed absent is there")
        self._insert_records(records)
        if new:
            self._insert_state(new)
        self._put_state(put)
        if gone:
            self._many("DELETE FROM state WHERE key=?", gone)

    @staticmethod
    def _rows(ov, now):
        """A validated batch's rows, as _write writes them: records (id, type,
        token, raw, received), state (key, CBOR value), and the (key,) of
        each state key it deletes."""
        dumps = fastparse.dumps
        put, gone = [], []
        for k, v in ov.kv.items():
            if v is None:
                gone.append((k,))
            else:
                put.append((k, dumps(v)))
        return [(r.id, r.type, r.token_ref, r.raw, now) for r in ov.added], put, gone

    def _insert_records(self, rows):
        """(id, type, token, raw, received) rows into records, in order."""
        self._many("".join(RECORD_ROWS), rows)

    def _put_state(self, rows):
        """(key, encoded value) rows into state, replacing what is there."""
        self._many("".join(STATE_ROWS), rows)

    def _insert_state(self, rows):
        """(key, encoded value) rows into state; a key there already fails."""
        self._many("".join(FRESH_STATE_ROWS), rows)

    # -- reading --------------------------------------------------------------

    def count(self):
        return self._one("SELECT COUNT(*) FROM records", ())[0]

    def counts_by_type(self):
        return {R.NAMES.get(t, str(t)): n for t, n in
                self._all("SELECT type, COUNT(*) FROM records GROUP BY type ORDER BY type", ())}

    def records(self, since=0, types=None):
        """(seq, raw) in acceptance order."""
        q = "SELECT seq, raw FROM records WHERE seq>?"
        args = [since]
        if types:
            q += " AND type IN (%s)" % ",".join("?" * len(types))
            args += list(types)
            if not set(types) & set(PAYMENT_TYPES):
                q += " AND " + RARE_TYPES  # then the index of rare types answers
        for seq, raw in self._all(q + " ORDER BY seq", args):
            yield seq, bytes(raw)

    def record_ids(self):
        return [bytes(r[0]) for r in self._all("SELECT id FROM records", ())]

    def records_by_id(self, ids):
        """{id: raw} for those of ids this CTB holds (one query per 500 ids)."""
        out = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            q = "SELECT id, raw FROM records WHERE id IN (%s)" % ",".join("?" * len(part))
            for rid, raw in self._all(q, part):
                out[bytes(rid)] = bytes(raw)
        return out

    def ids_held(self, ids):
        """The set of those of ids this CTB holds: the id index alone
        answers (a covering index), no record is read."""
        out = set()
        ids = list(ids)
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            for (rid,) in self._all("SELECT id FROM records WHERE id IN (%s)" % ",".join("?" * len(part)), part):
                out.add(bytes(rid))
        return out

    def token_history(self, ref):
        return [bytes(r[0]) for r in self._all("SELECT raw FROM records WHERE token=? ORDER BY type, seq", (ref,))]

    def state_prefix(self, prefix):
        """(key, value) for state keys starting with prefix."""
        hi = prefix[:-1] + bytes((prefix[-1] + 1,))
        for k, v in self._all("SELECT key, value FROM state WHERE key>=? AND key<? ORDER BY key", (prefix, hi)):
            yield bytes(k), cbor.loads(bytes(v))

    def state_digest(self):
        """SHA-256 over all state and record ids, in key order: equal digests
        mean identical CTBs (used to prove peers converged)."""
        h = hashlib.sha256()
        for k, v in self._all("SELECT key, value FROM state ORDER BY key", ()):
            h.update(bytes(k) + b"\x00" + bytes(v))
        for (i,) in self._all("SELECT id FROM records ORDER BY id", ()):
            h.update(bytes(i))
        return h.hexdigest()

    # -- the rules' version ------------------------------------------------------

    def _check_rules(self):
        """After the schema's migrations: a CTB whose state was derived under
        other rules (another ctb.RULES_VERSION, or none recorded: written
        before versions were kept) derives it again from its records."""
        if self.local_get(RULES_KEY) == str(ctb.RULES_VERSION):
            return None
        if self._one("SELECT 1 FROM records LIMIT 1", ()) is None:
            self.local_set(RULES_KEY, ctb.RULES_VERSION)  # nothing derived yet (autocommit, as next_serial)
            return None
        self.rebuilt = self.rebuild_state()
        return self.rebuilt

    def rebuild_state(self, progress=None):
        """Derive the state again from the records, in their acceptance order,
        under this Pen's rules, every signature checked again. A record these
        rules refuse (an older Pen accepted it) moves to `set_aside` with its
        exact bytes, seq and reason: never deleted, no longer in the CTB, and
        so is a record that depended on it. One transaction: a crash leaves the
        CTB as it was, and the next open rebuilds again. progress(done, total)
        is called after each batch. Evidence these rules derive that the
        records lack is added, as a batch adds it. -> [(record id, reason)]
        set aside."""
        self._begin()
        try:
            total = self._one("SELECT COUNT(*) FROM records", ())[0]
            state, aside, derived = ctb.MemoryState(), {}, []
            view = _Replay(self, state, aside)
            done, last = 0, 0
            while True:
                rows = list(self._all("SELECT seq, raw FROM records WHERE seq>? ORDER BY seq LIMIT ?",
                                      (last, REPLAY_BATCH)))
                if not rows:
                    break
                view.before = rows[0][0]
                raws = [bytes(raw) for _, raw in rows]
                ov, verdicts = ctb.apply_batch(view, raws)  # a refused record writes nothing: keep the rest
                for k, v in ov.kv.items():
                    state.put(k, v)  # None deletes, as in the validator's own state
                held = self.ids_held([r.id for r in ov.added])
                derived += [r for r in ov.added if r.id not in held]  # evidence these rules make that older did not
                for (seq, _), raw, v in zip(rows, raws, verdicts):
                    if v.code == ctb.REJECTED:
                        rid = v.record.id if v.record is not None else record_id(raw)
                        aside[rid] = (raw, seq, v.reason + ((": " + v.detail) if v.detail else ""))
                last = rows[-1][0]
                done += len(rows)
                if progress is not None:
                    progress(done, total)
            self._exec("DELETE FROM state", ())
            dumps = cbor.dumps
            self._put_state([(k, dumps(v)) for k, v in state.kv.items()])
            now = self.clock()
            self._many("INSERT INTO set_aside(id, raw, seq, reason, rules, at) VALUES (?,?,?,?,?,?)",
                       [(rid, raw, seq, why, ctb.RULES_VERSION, now) for rid, (raw, seq, why) in aside.items()])
            self._many("DELETE FROM records WHERE id=?", [(rid,) for rid in aside])
            self._insert_records([(r.id, r.type, r.token_ref, r.raw, now) for r in derived])
            self.local_set(RULES_KEY, ctb.RULES_VERSION)
            self._wrote()
            self._commit()
        except BaseException:
            self._rollback()
            raise
        finally:
            self._cache.clear()
        return [(rid, why) for rid, (_, _, why) in aside.items()]

    def set_aside(self):
        """(id, raw, seq, reason, rules) of every record a rebuild set aside."""
        return [(bytes(i), bytes(raw), seq, why, rules) for i, raw, seq, why, rules in
                self._all("SELECT id, raw, seq, reason, rules FROM set_aside ORDER BY seq", ())]

    # -- local bookkeeping ----------------------------------------------------

    def local_get(self, key, default=None):
        row = self._one("SELECT value FROM local WHERE key=?", (key,))
        return row[0] if row else default

    def local_set(self, key, value):
        self._exec("INSERT INTO local(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (key, str(value)))

    def local_prefix(self, prefix):
        return self._all("SELECT key, value FROM local WHERE key>=? AND key<? ORDER BY key",
                         (prefix, prefix + "\uffff"))

    def next_serial(self, kid, kind):
        """A fresh serial for a ref this node's key is about to make."""
        key = "serial:%s:%s" % (kid.hex(), kind)
        n = int(self.local_get(key, "0")) + 1
        self.local_set(key, n)
        return n


# Page cache per connection (negative: KiB): the record ids are random, so
# every insert lands in a different page of the id index, and once the index
# outgrows SQLite's default 2 MB each batch reads its pages back from disk.
# 64 MiB holds the id index of ~1.5 M records; it is taken only as the CTB grows.
CACHE_KIB = 65536
# WAL pages written before SQLite copies them into the database file: a
# page changed by many batches between two checkpoints is copied once, so a
# larger WAL (~40 MB here, SQLite's default is 1000 pages, ~4 MB) copies the
# random-id index pages far fewer times. Durability is the same: every
# commit still syncs the WAL (synchronous=FULL). Into a table of 200 000
# rows, bare 500-row inserts cost 17-19 us of CPU a row with both settings
# against 22-31 us with SQLite's defaults; the whole ingest path 68-82
# against 72-85 us a record, and 4-34 % more records/s (pen bench ingest
# --grown, docs/node.md).
WAL_CHECKPOINT_PAGES = 10000
ROWS_PER_INSERT = 199


class SQLiteCTB(SQLStore):
    _held_errors = (sqlite3.IntegrityError,)

    def __init__(self, path, clock=time.time):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self.path == ":memory:":
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        else:
            self.db = sqlwal.connect(self.path, check_same_thread=False)
        self._init_common(clock)
        self._data_version = None
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA cache_size=-%d" % CACHE_KIB)
        self.db.execute("PRAGMA wal_autocheckpoint=%d" % WAL_CHECKPOINT_PAGES)
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self._check_rules()

    def close(self):
        self.db.close()

    # -- the database ---------------------------------------------------------

    def _one(self, sql, args):
        return self.db.execute(sql, args).fetchone()

    def _all(self, sql, args):
        return self.db.execute(sql, args)

    def _many(self, sql, rows):
        self.db.executemany(sql, rows)

    def _exec(self, sql, args):
        self.db.execute(sql, args)

    # A batch's rows go into SQLite as a few INSERTs of many VALUES each
    # rather than an executemany of one row each: the per-statement work
    # (a step of the statement, the AUTOINCREMENT counter written back) is
    # paid once per ROWS_PER_INSERT rows. Bare inserts of the ingest bench's
    # rows: records 4.2 -> 3.5 us, state 1.7 -> 1.2 us a row of CPU (pen bench
    # ingest --phases, sql_floor). VALUES rows are inserted in their order, so
    # seq is still the acceptance order. 199 rows of 5 values stay under the
    # 999 host parameters older SQLite builds allow.
    def _insert_records(self, rows):
        self._many_values(RECORD_ROWS, rows)

    def _put_state(self, rows):
        self._many_values(STATE_ROWS, rows)

    def _insert_state(self, rows):
        self._many_values(FRESH_STATE_ROWS, rows)

    def _many_values(self, sql, rows):
        head, one, tail = sql
        for i in range(0, len(rows), ROWS_PER_INSERT):
            part = rows[i:i + ROWS_PER_INSERT]
            self.db.execute(head + ",".join([one] * len(part)) + tail, list(chain.from_iterable(part)))

    def _begin(self):
        self.db.execute("BEGIN IMMEDIATE")

    def _commit(self):
        self.db.execute("COMMIT")

    def _rollback(self):
        self.db.execute("ROLLBACK")

    def _changed_elsewhere(self):
        # PRAGMA data_version changes when another connection commits
        v = self.db.execute("PRAGMA data_version").fetchone()[0]
        changed = v != self._data_version
        self._data_version = v
        return changed

    # the State interface again, without the indirection: the validator's
    # hot path (pen bench ingest)
    def get(self, key):
        row = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return cbor.loads(row[0]) if row else None

    def get_record(self, rid):
        row = self.db.execute("SELECT raw FROM records WHERE id=?", (rid,)).fetchone()
        return bytes(row[0]) if row else None

    # -- schema -----------------------------------------------------------

    def _migrate(self):
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError("CTB file schema %d is newer than this Pen (%d)" % (version, SCHEMA_VERSION))
        while version < SCHEMA_VERSION:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                version += 1
                self.db.execute("PRAGMA user_version=%d" % version)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def schema_version(self):
        return self.db.execute("PRAGMA user_version").fetchone()[0]
