"""A CTB node without its transport: the store, the id index sync
reconciles over, the responder sessions, and the read views the HTTP API
serves. Every call is synchronous and takes the node's lock around the
store, so the server's threads and a background sync never interleave two
transactions on one connection."""
import json
import secrets
import threading
import time

from pen.accounting import make_receipts
from pen.peering import MAX_RECEIPT_ASKS, NodeError, receipts_in, refusal  # noqa: F401  (NodeError re-exported)
from pen.store import BatchRejected
from pen.sync import Reconciler, SetIndex
from pen_protocol import ctb, ids, records as R

# Records one submitted batch may hold: 1000 x 3 KB at most = 3 MB, one
# transaction of well under a second. A bridge sends 500 (MAX_BATCH).
MAX_BATCH_RECORDS = 1000
# Ids one fetch may ask for (a reply of 2000 records is ~200 KB, 6 MB at worst).
MAX_FETCH_IDS = 2000
# Responder sessions kept at once, and how long an idle one lives: a sync
# takes two round trips of milliseconds; more sessions than peers is abuse.
MAX_SESSIONS = 16
SESSION_TTL_S = 60

# Ids of newly stored records a node buffers before adding them to its sync
# index. Adding is cheap per id in bulk (numpy: ~1 us an id in thousands)
# and dear in tiny batches (add_many of one id, 2.7-4.8 ms measured in issue
# 14: the sorted arrays are copied and the 65536 cached symbols touched), so
# single-record submits would pay it whole each time;
# a sync catches the index up first, so it never sees a stale one.
INDEX_LAG = 4096

# Group commits tried before the batches left go one by one: each refusal
# takes the batches it names out, so two tries cover a group with bad records
# (the second try can only fail on a record the first did not reach).
GROUP_TRIES = 2

PEER_KEY = "peer:"  # local bookkeeping: peer URL -> JSON of its last sync


def _without_refused(batches, todo, verdicts):
    """The batches of todo none of whose records the group refused
    (verdicts: the group's, in todo's order)."""
    keep = []
    at = 0
    for i in todo:
        n = len(batches[i])
        if all(v.code != ctb.REJECTED for v in verdicts[at:at + n]):
            keep.append(i)
        at += n
    return keep


def _verdicts(verdicts):
    return [{"code": v.code, "reason": v.reason} for v in verdicts]


def _hex(b):
    return b.hex() if isinstance(b, (bytes, bytearray)) else b


def _jsonable(v):
    """State values to JSON: bytes as hex, int-keyed maps as string keys."""
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def parse_ref(text):
    try:
        b = bytes.fromhex(text)
    except ValueError:
        b = b""
    if len(b) != R.REF_LEN:
        raise NodeError("bad-ref", "a ref is 16 hex digits")
    return b


def parse_account(text):
    try:
        return ids.pack(text)
    except ids.ProductIdError as e:
        raise NodeError("bad-account", str(e))


class Node:
    def __init__(self, store, node_key=None, clock=time.time, index_lag=INDEX_LAG):
        self.store = store
        self.node_key = node_key  # signs ACCOUNTED receipts for uploaded USEs
        self.clock = clock
        self.lock = threading.RLock()
        self._index = SetIndex.from_ids(store.record_ids())
        self._unindexed = []  # ids stored, not yet in _index (at most index_lag)
        self.index_lag = index_lag
        store.listeners.append(self._on_added)
        self.sessions = {}  # id -> [Reconciler, last used]
        self._digest = (None, None)

    @property
    def index(self):
        """The sync index, holding every record stored."""
        with self.lock:
            self._catch_up()
            return self._index

    def _catch_up(self):
        if self._unindexed:
            ids, self._unindexed = self._unindexed, []
            self._index.add_many(ids)

    def _on_added(self, recs):
        self._unindexed.extend(r.id for r in recs)
        if len(self._unindexed) >= self.index_lag:
            self._catch_up()

    def refresh(self):
        """Catch the index up with records another process wrote."""
        with self.lock:
            if len(self.index) != self.store.count():
                self._index.add_many(self.store.record_ids())

    # -- writing ----------------------------------------------------------

    def submit(self, raws, receipts=True):
        """A batch through the one validator. Returns the bridge's peer
        contract (pen.bridge.peers): {"ok": True, "verdicts": [...],
        "receipts": [raw...]} or {"ok": False, "index", "reason", "detail",
        "rejected"}. The receipts are stored in the batch's transaction."""
        if len(raws) > MAX_BATCH_RECORDS:
            raise NodeError("too-many-records", "at most %d records a batch" % MAX_BATCH_RECORDS, 413)
        with self.lock:
            try:
                verdicts, made = self.store.submit_follow(raws, self._receipts if receipts else None, self.node_key)
            except BatchRejected as e:
                return refusal(e)
        return {"ok": True, "verdicts": _verdicts(verdicts), "receipts": [r.raw for r in made]}

    def _receipts(self, state, verdicts):
        return make_receipts(state, verdicts, self.node_key, self.clock())

    def submit_group(self, batches):
        """Several small batches (from different requests) stored in one
        transaction with their receipts: a transaction has a fixed cost
        (commit, WAL sync, lock), so single-record uploads arriving together
        share it (group commit). Each batch gets the answer submit() would
        give it alone: batches holding a record the group refused are
        taken out and submitted alone after the rest, so one client's bad
        record never refuses another's, nor makes the others commit one
        by one. Returns one answer per batch, in order."""
        if sum(len(b) for b in batches) > MAX_BATCH_RECORDS:
            raise NodeError("too-many-records", "at most %d records a group" % MAX_BATCH_RECORDS, 413)
        out = [None] * len(batches)
        todo = list(range(len(batches)))
        with self.lock:
            for _ in range(GROUP_TRIES):
                if len(todo) < 2:
                    break
                try:
                    self._commit_group(batches, todo, out)
                    todo = []
                except BatchRejected as e:
                    if e.verdicts is None:
                        break
                    todo = _without_refused(batches, todo, e.verdicts)
            for i, b in enumerate(batches):  # what no group took: alone, in order
                if out[i] is None:
                    out[i] = self.submit(b)
        return out

    def _commit_group(self, batches, todo, out):
        """The batches numbered in todo in one transaction; fills their answers."""
        verdicts, made = self.store.submit_follow([raw for i in todo for raw in batches[i]], self._receipts,
                                                    self.node_key)
        by_use = {}
        for r in made:
            by_use.setdefault(r.fields[1], []).append(r.raw)
        at = 0
        for i in todo:
            mine = verdicts[at:at + len(batches[i])]
            at += len(batches[i])
            got = [r for v in mine if v.record is not None for r in by_use.pop(v.record.id, [])]
            out[i] = {"ok": True, "verdicts": _verdicts(mine), "receipts": got}

    # -- records ----------------------------------------------------------

    def fetch(self, want):
        """Raw records for the ids asked (those held, in the order asked)."""
        if len(want) > MAX_FETCH_IDS:
            raise NodeError("too-many-ids", "at most %d ids a fetch" % MAX_FETCH_IDS, 413)
        return self.fetch_all(want)

    def fetch_all(self, want):
        """fetch() without the request limit, for this node's own sync."""
        with self.lock:
            got = self.store.records_by_id(want)
        return [got[i] for i in want if i in got]

    def receipts(self, uses):
        """The ACCOUNTED receipts held for [(token ref, use id)]: what a
        bridge asks for when the answer to an upload was lost."""
        if len(uses) > MAX_RECEIPT_ASKS:
            raise NodeError("too-many-ids", "at most %d uses a request" % MAX_RECEIPT_ASKS, 413)
        out = []
        with self.lock:
            for ref, use_id in uses:
                out += receipts_in(self.store.token_history(ref), use_id)
        return out

    def record(self, rid):
        with self.lock:
            return self.store.get_record(rid)

    # -- sync responder -----------------------------------------------------

    def sync_receive(self, session, msg):
        """One initiator message in, the reply out: (reply, session id or
        None when the exchange is over). A new exchange has session None.
        SyncError propagates (the session is dropped)."""
        now = self.clock()
        with self.lock:
            for sid in [s for s, v in self.sessions.items() if now - v[1] > SESSION_TTL_S]:
                del self.sessions[sid]
            if session is None:
                if len(self.sessions) >= MAX_SESSIONS:
                    raise NodeError("busy", "too many sync sessions", 503)
                r = Reconciler(self.index, initiator=False)
                session = secrets.token_hex(8)
            else:
                entry = self.sessions.pop(session, None)
                if entry is None:
                    raise NodeError("unknown-session", "no such sync session (expired?)", 404)
                r = entry[0]
        reply = r.receive(msg)
        if r.done:
            return reply, None
        with self.lock:
            self.sessions[session] = [r, now]
        return reply, session

    # -- peers ------------------------------------------------------------

    def peer_status(self, url):
        with self.lock:
            raw = self.store.local_get(PEER_KEY + url)
        return json.loads(raw) if raw else {}

    def set_peer_status(self, url, status):
        with self.lock:
            self.store.local_set(PEER_KEY + url, json.dumps(status, sort_keys=True))

    def peers(self):
        with self.lock:
            return {k[len(PEER_KEY):]: json.loads(v) for k, v in self.store.local_prefix(PEER_KEY)}

    # -- views ------------------------------------------------------------

    def status(self):
        with self.lock:
            count = self.store.count()
            if self._digest[0] != count:
                self._digest = (count, self.store.state_digest())
            economy = ctb.economy_name(self.store)
            by_type = self.store.counts_by_type()
            schema = self.store.schema_version()
        return {"records": count, "state_digest": self._digest[1], "economy": economy,
                "by_type": by_type, "schema": schema,
                "database": "postgresql" if type(self.store).__name__ == "PostgresCTB" else "sqlite",
                "sync_sessions": len(self.sessions), "peers": self.peers(),
                "receipts_refused": {"count": self.store.follow_refused[0], "last": self.store.follow_refused[1]}}

    def token(self, ref):
        with self.lock:
            t = self.store.get(b"T" + ref)
            history = self.store.token_history(ref)
        if t is None:
            raise NodeError("unknown-token", ref.hex(), 404)
        recs = [R.parse(raw) for raw in history]
        eff = ctb.effective_use(t)
        return {
            "ref": ref.hex(), "state": ctb.token_state(t), "issuer": ctb.token_issuer(t).hex(),
            "value": ctb.token_value(t), "kind": "change" if ctb.token_kind(t) == R.CHANGE else "normal",
            "authority": ctb.token_authority(t).hex(), "user": _hex(ctb.user(t)),
            "uses": [{"id": ctb.use_id(u).hex(), "product": ids.unpack(ctb.use_product(u)),
                      "account": ids.unpack(ctb.use_account(u)), "effective": u is eff} for u in ctb.uses(t)],
            "accounted": [{"id": a[0].hex(), "use": a[1].hex()} for a in ctb.receipts(t)],
            "history": [{"id": r.id.hex(), "type": r.name, "raw": r.raw.hex()} for r in recs],
        }

    def _votation(self, ref, v):
        closed = ctb.votation_result(v)
        return {
            "ref": ref.hex(), "open": ctb.votation_open_id(v).hex(), "subject": R.SUBJECTS[ctb.votation_subject(v)],
            "about": _jsonable(ctb.votation_about(v)), "electorate": [k.hex() for k in ctb.votation_electorate(v)],
            "deadline": ctb.votation_deadline(v),
            "votes": {k.hex(): {"choice": R.CHOICES[c[0]], "id": c[1].hex()} for k, c in ctb.counted_votes(v).items()},
            "void": [k.hex() for k in ctb.double_voters(v)],
            "closed": None if closed is None else {"yes": closed[0], "no": closed[1], "abstain": closed[2],
                                                   "passed": closed[3], "close": closed[4].hex()},
        }

    def votation(self, ref):
        with self.lock:
            v = self.store.get(b"V" + ref)
        if v is None:
            raise NodeError("unknown-votation", ref.hex(), 404)
        return self._votation(ref, v)

    def votations(self):
        with self.lock:
            rows = list(self.store.state_prefix(b"V"))
        return [self._votation(k[1:], v) for k, v in rows]

    def publications(self, kind=None):
        with self.lock:
            rows = list(self.store.state_prefix(b"U"))
        out = []
        for k, u in rows:
            name = R.PUB_KINDS[ctb.publication_kind(u)]
            if kind is None or name == kind:
                out.append({"ref": k[1:].hex(), "kind": name, "subject": _jsonable(ctb.publication_subject(u)),
                            "content": _jsonable(ctb.publication_content(u)), "id": ctb.publication_id(u).hex()})
        return out

    def publication(self, ref):
        for p in self.publications():
            if p["ref"] == ref.hex():
                return p
        raise NodeError("unknown-publication", ref.hex(), 404)

    def accounts(self, prefix=""):
        """Credits received per account under a product-id prefix (a
        category), and their sum. Keys are packed BCD, so the digits are
        compared after unpacking."""
        if prefix and not (prefix.isdigit() and len(prefix) <= 12):
            raise NodeError("bad-account", "a prefix is up to 12 decimal digits")
        with self.lock:
            rows = list(self.store.state_prefix(b"A"))
        accts = {}
        for k, credits in rows:
            digits = ids.unpack(k[1:])
            if digits.startswith(prefix):
                accts[digits] = ctb.amount(credits)
        return {"prefix": prefix, "total": sum(accts.values()), "accounts": accts}

    def account(self, text):
        key = parse_account(text)
        with self.lock:
            credits = ctb.amount(self.store.get(b"A" + key))
        return {"account": text, "credits": credits}
