"""pen node serve|sync|status — the CTB node and its peers (docs/node.md)."""
import json
import os
import time

from pen.cli import PenError
from pen.commands._common import open_ctb, load_key


def register(sub):
    p = sub.add_parser("node", help="the CTB node: HTTP API, peer sync, status")
    s = p.add_subparsers(dest="node_cmd", metavar="ACTION")
    s.required = True
    sv = s.add_parser("serve", help="serve this CTB over HTTP and sync with peers")
    sv.add_argument("--listen", default="127.0.0.1:8470", help="HOST:PORT (default 127.0.0.1:8470)")
    sv.add_argument("--db", help="SQLite path or postgresql:// URL (default: the CTB in the Pen folder)")
    sv.add_argument("--peer", action="append", default=[], help="peer node URL to sync with (repeat)")
    sv.add_argument("--interval", type=float, default=60.0, help="seconds between syncs with each peer")
    sv.add_argument("--node-key", help="key name (member role node) that signs ACCOUNTED receipts")
    sv.add_argument("--key", help="key name this node signs its requests to peers with (default: --node-key)")
    sv.add_argument("--verify-workers", type=int, default=1 if (os.cpu_count() or 1) > 1 else 0,
                    help="processes that check signatures beside this one (default 1 on a multi-core machine)")
    sv.set_defaults(func=cmd_serve)
    sy = s.add_parser("sync", help="sync this CTB with a peer node once")
    sy.add_argument("--peer", action="append", required=True, help="peer node URL (repeat)")
    sy.add_argument("--db", help="SQLite path or postgresql:// URL")
    sy.add_argument("--key", required=True, help="key name this node signs its requests with (the peer must list it)")
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=cmd_sync)
    st = s.add_parser("status", help="records, state digest, peers, backlog, last sync")
    st.add_argument("--db", help="SQLite path or postgresql:// URL")
    st.add_argument("--url", help="ask a running node instead of opening the database")
    st.add_argument("--key", help="with --url: a key the node lists as a peer (else only the public summary)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    pe = s.add_parser("peer", help="the keys allowed to write to and sync with this node")
    ps = pe.add_subparsers(dest="peer_cmd", metavar="ACTION")
    ps.required = True
    pa = ps.add_parser("add", help="allow a peer key (or change its settings)")
    pa.add_argument("key", help="the peer's public key (64 hex digits, `pen keys show`) or a key name here")
    pa.add_argument("--name", help="a name for logs and status (default: the key name or its first digits)")
    pa.add_argument("--role", choices=["node", "bridge"], default=None,
                    help="node: sync and everything; bridge: upload records and read tokens (default node)")
    pa.add_argument("--rate", type=float, default=None,
                    help="requests a second it may make (default: node 100, bridge 20)")
    pa.add_argument("--burst", type=int, default=None, help="requests it may make at once (default: node 500, bridge 100)")
    pa.add_argument("--db", help="SQLite path or postgresql:// URL")
    pa.set_defaults(func=cmd_peer_add)
    pr = ps.add_parser("remove", help="take a peer key off the list")
    pr.add_argument("key")
    pr.add_argument("--db", help="SQLite path or postgresql:// URL")
    pr.set_defaults(func=cmd_peer_remove)
    pl = ps.add_parser("list", help="the allowed keys, their roles and rate limits")
    pl.add_argument("--db", help="SQLite path or postgresql:// URL")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_peer_list)


def _listen(text):
    host, _, port = text.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        port = -1
    if not host or not 0 <= port <= 65535:
        raise PenError("bad --listen %r: expected HOST:PORT" % text)
    return host, port


def _node(args, node_key=None):
    from pen.node.core import Node
    return Node(open_ctb(args), node_key=node_key)


def cmd_serve(args):
    from pen.node.server import serve_forever
    host, port = _listen(args.listen)
    key = load_key(args, args.node_key) if args.node_key else None
    signer = load_key(args, args.key) if args.key else key
    if args.peer and signer is None:
        raise PenError("--peer needs --key NAME (or --node-key): peers accept only signed sync requests")
    if args.verify_workers < 0:
        raise PenError("--verify-workers must be 0 or more")
    node = _node(args, key)
    if args.verify_workers:
        from pen.verifypool import ParallelVerifier
        node.store.verifier = ParallelVerifier(args.verify_workers)

    def on_sync(peer, res):
        if isinstance(res, Exception):
            print("sync %s failed: %s" % (peer, res), flush=True)
        elif res["pulled"] or res["pushed"] or res["refused"]:
            print("sync %s: pulled %d, pushed %d, refused %d, %d B, %d round trips" % (
                peer, res["pulled"], res["pushed"], res["refused"], res["bytes"], res["round_trips"]), flush=True)
    serve_forever(node, host, port, args.peer, args.interval, on_sync, signer=signer)
    return 0


def cmd_sync(args):
    from rich.progress import Progress
    from pen.peering import PeerUnavailable
    from pen.node.client import NodeClient
    from pen.node.core import NodeError
    from pen.node.sync import sync_with
    from pen.sync import SyncError
    signer = load_key(args, args.key)
    node = _node(args)
    results = []
    failed = False
    with Progress(transient=True, disable=args.json) as progress:
        for url in args.peer:
            try:
                results.append(sync_with(node, NodeClient(url, signer=signer), progress))
            except (PeerUnavailable, NodeError, SyncError) as e:
                failed = True
                results.append({"peer": url, "error": str(e)})
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        for r in results:
            if "error" in r:
                print("%s: sync failed: %s" % (r["peer"], r["error"]))
            else:
                print("%s: %s, we lacked %d, they lacked %d; pulled %d, pushed %d, refused %d, backlog %d; "
                      "%d B in %d round trips (%d B to reconcile), %.2f s" % (
                          r["peer"], r["mode"], r["we_lacked"], r["they_lacked"], r["pulled"], r["pushed"],
                          r["refused"], r["backlog"], r["bytes"], r["round_trips"], r["reconcile_bytes"],
                          r["seconds"]))
        print("state digest %s (%d records)" % (node.store.state_digest(), node.store.count()))
    if failed:
        raise PenError("sync failed with %d of %d peers" % (sum("error" in r for r in results), len(results)))
    return 0


def _ago(t):
    if not t:
        return "never"
    s = int(time.time() - t)
    return "%s (%ds ago)" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)), s)


def cmd_status(args):
    if args.url:
        from pen.peering import NodeError, PeerUnavailable
        from pen.node.client import NodeClient
        try:
            signer = load_key(args, args.key) if args.key else None
            st = NodeClient(args.url, timeout_s=10, signer=signer).status()
        except PeerUnavailable as e:
            raise PenError("node not reachable: %s" % e)
        except NodeError as e:
            raise PenError("the node refused: %s" % e)
    else:
        from pen.node.core import PEER_KEY
        store = open_ctb(args)
        st = {"records": store.count(), "state_digest": store.state_digest(), "by_type": store.counts_by_type(),
              "peers": {k[len(PEER_KEY):]: json.loads(v) for k, v in store.local_prefix(PEER_KEY)}}
    if args.json:
        print(json.dumps(st, indent=1, sort_keys=True))
        return 0
    print("CTB node: %d records, state digest %s" % (st["records"], st["state_digest"]))
    if "peers" not in st:
        print("(the public summary: give --key NAME of a listed peer for sync details)")
        return 0
    if not st["peers"]:
        print("no peers synced yet")
    for url, p in sorted(st["peers"].items()):
        print("peer %s" % url)
        print("  last successful sync %s; last attempt %s" % (_ago(p.get("last_ok")), _ago(p.get("last_attempt"))))
        print("  backlog %s, pulled %s, pushed %s, refused %s%s" % (
            p.get("backlog", "-"), p.get("pulled", "-"), p.get("pushed", "-"), p.get("refused", "-"),
            ("; last error: " + p["last_error"]) if p.get("last_error") else ""))
    return 0


def _peer_key(args):
    from pen.node.auth import parse_key
    try:
        return parse_key(args.key), None
    except ValueError:
        pass
    if len(args.key) == 64:
        raise PenError("bad peer key %r: 64 hex digits, or the name of a key in this Pen folder" % args.key)
    s = load_key(args, args.key)
    return s.public_key, s.name


def cmd_peer_add(args):
    from pen.node.auth import DEFAULTS, allow_peer, load_peers
    key, keyname = _peer_key(args)
    store = open_ctb(args)
    old = load_peers(store).get(key)
    name = args.name or keyname or (old.name if old else key.hex()[:16])
    role = args.role or (old.role if old else "node")
    kept = old is not None and old.role == role  # a new role starts from that role's defaults
    rate = args.rate if args.rate is not None else (old.rate if kept else DEFAULTS[role][0])
    burst = args.burst if args.burst is not None else (old.burst if kept else DEFAULTS[role][1])
    try:
        allow_peer(store, key, name, role, rate, burst)
    except ValueError as e:
        raise PenError(str(e))
    print("%s peer %s (%s) %s: %g requests a second, bursts of %d" % (
        "updated" if old else "allowed", name, key.hex(), role, rate, burst))
    return 0


def cmd_peer_remove(args):
    from pen.node.auth import remove_peer
    key, _ = _peer_key(args)
    if not remove_peer(open_ctb(args), key):
        raise PenError("key %s is not on this node's peer list" % key.hex())
    print("removed peer %s (a running node stops taking it within seconds)" % key.hex())
    return 0


def cmd_peer_list(args):
    from pen.node.auth import load_peers
    peers = sorted(load_peers(open_ctb(args)).values(), key=lambda p: p.name)
    rows = [{"key": p.key.hex(), "name": p.name, "role": p.role, "rate": p.rate, "burst": p.burst} for p in peers]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no peers allowed: only anonymous reads of publications and accounts")
    for r in rows:
        print("%-16s %-6s %s  %g/s, bursts of %d" % (r["name"], r["role"], r["key"], r["rate"], r["burst"]))
    return 0
