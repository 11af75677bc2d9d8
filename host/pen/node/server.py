"""`pen node serve`: the HTTP face of a Node (aiohttp). docs/node.md lists
the endpoints. Bodies that carry records or sync messages are binary (CBOR,
application/cbor); everything a person or a dashboard reads is JSON.

The store is synchronous (sqlite3, psycopg): handlers run Node calls in the
default thread pool and the Node's lock keeps them one at a time, so the
event loop keeps accepting while a batch is validated.
"""
import asyncio
import collections
import functools
import sys
import threading
import time

from aiohttp import web

from pen.node import core
from pen.node.auth import BRIDGE, NODE, PUBLIC, Gate, load_peers
from pen.node.client import NodeClient
from pen.node.sync import sync_with
from pen.peering import (CBOR, KEY_HEADER, MAX_RECEIPT_ASKS, SESSION_HEADER,  # noqa: F401  (CBOR, SESSION_HEADER
                         NodeError)                                              # re-exported)
from pen.sync import SyncError
from pen.sync.messages import MAX_MESSAGE_BYTES
from pen_protocol import cbor, records as R

# The largest body: a sync message (8 MiB, pen.sync.messages) plus framing.
MAX_BODY = MAX_MESSAGE_BYTES + 4096
# A batch of MAX_BATCH_RECORDS records of MAX_RECORD bytes with CBOR heads.
MAX_BATCH_BYTES = core.MAX_BATCH_RECORDS * (R.MAX_RECORD + 3) + 9
MAX_FETCH_BYTES = core.MAX_FETCH_IDS * (R.ID_LEN + 1) + 9
# MAX_RECEIPT_ASKS pairs [token ref, use id] with their CBOR heads.
MAX_RECEIPTS_BYTES = MAX_RECEIPT_ASKS * (1 + R.REF_LEN + 1 + R.ID_LEN + 1) + 9

# Who may call each route (pen.node.auth roles) and the largest body it takes.
# A route missing here is refused to everyone. Anonymous clients read what the
# seed publishes: publications and the accounts' roll-ups ("accounts from
# different part of the economy"), and a short status; tokens (whose user
# keys and payments are the users' business), votations, records and sync
# are for the federation's own bridges and nodes.
RULES = {
    ("GET", "/v1/publications"): (PUBLIC, 0),
    ("GET", "/v1/publications/{ref}"): (PUBLIC, 0),
    ("GET", "/v1/accounts"): (PUBLIC, 0),
    ("GET", "/v1/accounts/{account}"): (PUBLIC, 0),
    ("GET", "/v1/status"): (PUBLIC, 0),
    ("POST", "/v1/records"): (BRIDGE, MAX_BATCH_BYTES),
    ("GET", "/v1/tokens/{ref}"): (BRIDGE, 0),
    ("POST", "/v1/receipts"): (BRIDGE, MAX_RECEIPTS_BYTES),
    ("GET", "/v1/records/{id}"): (NODE, 0),
    ("POST", "/v1/records/fetch"): (NODE, MAX_FETCH_BYTES),
    ("GET", "/v1/votations"): (NODE, 0),
    ("GET", "/v1/votations/{ref}"): (NODE, 0),
    ("POST", "/v1/sync"): (NODE, MAX_BODY),
    ("POST", "/v1/sync/{session}"): (NODE, MAX_BODY),
}
# A submit of fewer records than this waits for the commit in progress and
# shares the next with every other that arrived meanwhile (group commit,
# core.Node.submit_group): each submit costs two transactions (records, then
# receipts), a thread hop and the lock whatever its size, so single-record
# uploads one at a time ran at ~290/s and grouped at ~900-1100/s (pen bench
# ingest --single). Bridges send 500 at a time and go alone.
GROUP_RECORDS = 64

# per-request storage the guard fills: the Peer (None: anonymous) and the body it checked
_PEER = web.RequestKey("peer", object) if hasattr(web, "RequestKey") else "pen-peer"
_BODY = web.RequestKey("body", bytes) if hasattr(web, "RequestKey") else "pen-body"
# what an anonymous /v1/status shows (the rest names peers and their errors)
PUBLIC_STATUS = ("records", "state_digest", "economy", "schema")


def _error(reason, detail="", status=400):
    return web.json_response({"ok": False, "reason": reason, "detail": detail}, status=status)


async def _body(request, limit):
    if request.content_length is not None and request.content_length > limit:
        raise NodeError("too-large", "body over %d bytes" % limit, 413)
    data = await request.read()
    if len(data) > limit:
        raise NodeError("too-large", "body over %d bytes" % limit, 413)
    return data


def _byte_strings(data, what, size=None):
    """A CBOR array of byte strings (each of `size` bytes if given)."""
    try:
        obj = cbor.loads(data)
    except cbor.CBORError as e:
        raise NodeError("malformed", "not canonical CBOR: %s" % e)
    if not isinstance(obj, list):
        raise NodeError("malformed", "expected a CBOR array of %s" % what)
    for x in obj:
        if not isinstance(x, bytes) or (size is not None and len(x) != size):
            raise NodeError("malformed", "expected a CBOR array of %s" % what)
    return obj


class NodeServer:
    """node: a core.Node; peers: URLs to sync with every interval_s; signer:
    this node's key (pen.keys.Signer) for the requests it sends them; clock:
    the time requests are checked against (replay window, rate limits)."""

    def __init__(self, node, peers=(), interval_s=60.0, on_sync=None, signer=None, clock=time.time, gate=None,
                 group_records=GROUP_RECORDS, log=None):
        self.node = node
        self.peers = list(peers)
        self.interval_s = interval_s
        self.on_sync = on_sync  # called with (peer, result or exception) after each periodic sync
        self.signer = signer
        self.clock = clock
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.gate = gate or Gate(self._load_peers)
        self._owners = {}  # sync session -> the key of the peer that opened it
        self.group_records = group_records  # 0: every submit commits alone (pen bench ingest --single compares)
        self._group = collections.deque()  # (records, future) waiting for the next group commit
        self._committer = None
        self._tasks = []

    def _load_peers(self):
        with self.node.lock:
            return load_peers(self.node.store)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    def app(self):
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors, self._guard])
        r = app.router
        r.add_post("/v1/records", self.submit)
        r.add_post("/v1/records/fetch", self.fetch)
        r.add_post("/v1/receipts", self.receipts)
        r.add_get("/v1/records/{id}", self.record)
        r.add_get("/v1/tokens/{ref}", self.token)
        r.add_get("/v1/votations", self.votations)
        r.add_get("/v1/votations/{ref}", self.votation)
        r.add_get("/v1/publications", self.publications)
        r.add_get("/v1/publications/{ref}", self.publication)
        r.add_get("/v1/accounts", self.accounts)
        r.add_get("/v1/accounts/{account}", self.account)
        r.add_get("/v1/status", self.status)
        r.add_post("/v1/sync", self.sync)
        r.add_post("/v1/sync/{session}", self.sync)
        app.on_startup.append(self._start_peers)
        app.on_cleanup.append(self._stop_peers)
        return app

    @web.middleware
    async def _errors(self, request, handler):
        try:
            return await handler(request)
        except NodeError as e:
            return _error(e.reason, e.detail, e.status)
        except SyncError as e:
            return _error("sync-" + e.reason, e.detail, 400)
        except ConnectionError as e:  # the client went away mid-request: one line, not aiohttp's traceback
            self.log("client %s went away during %s %s (%s)" % (request.remote, request.method, request.path,
                                                               e or type(e).__name__))
            return _error("client-gone", str(e), 400)

    @web.middleware
    async def _guard(self, request, handler):
        """Every routed request passes the Gate before its handler; a signed
        one has its body read (within the route's bound) and checked here,
        and handlers take it from request[_BODY]."""
        route = request.match_info.route.resource
        if route is None:  # no such path: aiohttp's own 404/405
            return await handler(request)
        rule = RULES.get(("GET" if request.method == "HEAD" else request.method, route.canonical))
        if rule is None:
            raise NodeError("forbidden", "no one may %s %s" % (request.method, route.canonical), 403)
        need, limit = rule
        now = self.clock()
        if KEY_HEADER not in request.headers:
            request[_PEER] = self.gate.check_anonymous(need, request.remote, now)
            request[_BODY] = b""
            return await handler(request)
        if self.gate.due(now):
            await self._run(self.gate.reload, now)
        peer, when, nonce, sig = self.gate.check_headers(need, request.headers, now)
        body = await _body(request, limit) if limit else b""
        request[_PEER] = self.gate.check_body(peer, when, nonce, sig, request.method, request.host,
                                               request.raw_path, body, now)
        request[_BODY] = body
        return await handler(request)

    # -- records ----------------------------------------------------------

    async def submit(self, request):
        raws = _byte_strings(request[_BODY], "records")
        if len(raws) < self.group_records:
            res = await self._grouped(raws)
        else:
            res = await self._run(self.node.submit, raws)
        if not res["ok"]:
            return web.json_response(res, status=422)
        res["receipts"] = [r.hex() for r in res["receipts"]]
        return web.json_response(res)

    async def _grouped(self, raws):
        fut = asyncio.get_running_loop().create_future()
        self._group.append((raws, fut))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit_groups())
        return await fut

    async def _commit_groups(self):
        """One group commit after another while submits are waiting."""
        while self._group:
            take, n = [], 0
            while self._group and n + len(self._group[0][0]) <= core.MAX_BATCH_RECORDS:
                take.append(self._group.popleft())
                n += len(take[-1][0])
            try:
                answers = await self._run(self.node.submit_group, [raws for raws, _ in take])
            except Exception as e:  # the store failed: every waiter hears it
                answers = [e] * len(take)
            for (_, fut), a in zip(take, answers):
                if fut.done():  # its client went away; the records are stored all the same
                    continue
                if isinstance(a, Exception):
                    fut.set_exception(a)
                else:
                    fut.set_result(a)

    async def fetch(self, request):
        want = _byte_strings(request[_BODY], "16-byte ids", R.ID_LEN)
        raws = await self._run(self.node.fetch, want)
        return web.Response(body=cbor.dumps(raws), content_type=CBOR)

    async def receipts(self, request):
        try:
            asked = cbor.loads(request[_BODY])
        except cbor.CBORError as e:
            raise NodeError("malformed", "not canonical CBOR: %s" % e)
        if not (isinstance(asked, list) and all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], bytes) and len(p[0]) == R.REF_LEN
                and isinstance(p[1], bytes) and len(p[1]) == R.ID_LEN for p in asked)):
            raise NodeError("malformed", "expected a CBOR array of [8-byte token ref, 16-byte use id]")
        raws = await self._run(self.node.receipts, [tuple(p) for p in asked])
        return web.Response(body=cbor.dumps(raws), content_type=CBOR)

    async def record(self, request):
        try:
            rid = bytes.fromhex(request.match_info["id"])
        except ValueError:
            rid = b""
        if len(rid) != R.ID_LEN:
            raise NodeError("bad-id", "a record id is 32 hex digits")
        raw = await self._run(self.node.record, rid)
        if raw is None:
            raise NodeError("unknown-record", rid.hex(), 404)
        return web.Response(body=raw, content_type="application/octet-stream")

    # -- views ------------------------------------------------------------

    async def token(self, request):
        ref = core.parse_ref(request.match_info["ref"])
        return web.json_response(await self._run(self.node.token, ref))

    async def votations(self, request):
        return web.json_response(await self._run(self.node.votations))

    async def votation(self, request):
        ref = core.parse_ref(request.match_info["ref"])
        return web.json_response(await self._run(self.node.votation, ref))

    async def publications(self, request):
        kind = request.query.get("kind")
        if kind is not None and kind not in R.PUB_KINDS:
            raise NodeError("bad-kind", "kind is one of " + ", ".join(R.PUB_KINDS))
        return web.json_response(await self._run(self.node.publications, kind))

    async def publication(self, request):
        ref = core.parse_ref(request.match_info["ref"])
        return web.json_response(await self._run(self.node.publication, ref))

    async def accounts(self, request):
        return web.json_response(await self._run(self.node.accounts, request.query.get("prefix", "")))

    async def account(self, request):
        return web.json_response(await self._run(self.node.account, request.match_info["account"]))

    async def status(self, request):
        st = await self._run(self.node.status)
        if request[_PEER] is None:
            st = {k: st[k] for k in PUBLIC_STATUS}
        else:
            st["refused_requests"] = dict(self.gate.refused)
        return web.json_response(st)

    # -- sync -------------------------------------------------------------

    async def sync(self, request):
        """A session continues only for the peer that opened it."""
        key = request[_PEER].key
        asked = request.match_info.get("session")
        if asked is not None and self._owners.get(asked) != key:
            raise NodeError("unknown-session", "no such sync session (expired?)", 404)
        self._owners.pop(asked, None)
        reply, session = await self._run(self.node.sync_receive, asked, request[_BODY])
        for s in [s for s in self._owners if s not in self.node.sessions]:
            del self._owners[s]
        if session:
            self._owners[session] = key
        headers = {SESSION_HEADER: session} if session else {}
        return web.Response(body=reply or b"", content_type=CBOR, headers=headers)

    # -- periodic sync with peers -------------------------------------------

    async def _start_peers(self, app):
        for url in self.peers:
            self._tasks.append(asyncio.get_running_loop().create_task(self._sync_loop(url)))

    async def _stop_peers(self, app):
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass

    async def _sync_loop(self, url):
        client = NodeClient(url, signer=self.signer, clock=self.clock)
        while True:
            try:
                res = await self._run(sync_with, self.node, client)
            except Exception as e:  # recorded in the peer's status by sync_with; keep trying
                res = e
            if self.on_sync is not None:
                self.on_sync(url, res)
            await asyncio.sleep(self.interval_s)


class Running:
    """A server on a background thread (tests, tools): .url, .stop()."""

    def __init__(self, server, host="127.0.0.1", port=0):
        self._server = server
        self._ready = threading.Event()
        self._loop = None
        self._error = None
        self._thread = threading.Thread(target=self._main, args=(host, port), daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def _main(self, host, port):
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._start(host, port))
        except Exception as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _start(self, host, port):
        self._runner = web.AppRunner(self._server.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = "http://%s:%d" % (host, self.port)

    def stop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def serve_in_thread(node, host="127.0.0.1", port=0, **kw):
    return Running(NodeServer(node, **kw), host, port)


def serve_forever(node, host, port, peers=(), interval_s=60.0, on_sync=None, log=print, signer=None):
    """`pen node serve`: run until interrupted."""
    server = NodeServer(node, peers, interval_s, on_sync, signer, log=log)
    allowed = server._load_peers()
    log("pen node on http://%s:%d (%d records; syncs with: %s; %d peer keys allowed to write%s)" % (
        host, port, node.store.count(), ", ".join(peers) or "none", len(allowed),
        "" if allowed else ": anonymous reads only, add peers with `pen node peer add`"))
    web.run_app(server.app(), host=host, port=port, print=None, access_log=None)
