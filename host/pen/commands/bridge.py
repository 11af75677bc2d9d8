"""pen bridge [--serial PORT | --pty-command CMD] --peer URL ... | status | send"""
import json
import os
import signal
import threading
import time

from pen.cli import PenError
from pen.commands._common import home, load_key, open_ctb, read_bundle


def register(sub):
    p = sub.add_parser("bridge", help="join a village's bridge node (serial link) to CTB peers")
    p.add_argument("--serial", metavar="PORT", help="the bridge node's serial port (/dev/ttyUSB0, a pty path)")
    p.add_argument("--pty-command", metavar="CMD",
                   help="start the node yourself on a pty (e.g. 'micropython firmware/unix_node.py --link stdio "
                        "--bridge --journal node.journal')")
    p.add_argument("--meshtastic", metavar="RADIO",
                   help="also serve Pen stores that reach this PC over a stock Meshtastic radio: serial:PORT or "
                        "tcp:HOST[:PORT] (docs/store.md)")
    p.add_argument("--pair", metavar="FILE", help="with --meshtastic: stores must pair (the code is printed) and "
                                                 "every frame is sealed; the pairings are kept in FILE")
    p.add_argument("--new-code", action="store_true", help="with --pair: print a new pairing code")
    p.add_argument("--peer", action="append", default=[], metavar="URL",
                   help="CTB node to upload to (repeatable); 'local' = the CTB in this Pen folder (--ctb)")
    p.add_argument("--db", help="the bridge's queue (default: bridge.sqlite in the Pen folder)")
    p.add_argument("--ctb", help="CTB database for --peer local")
    p.add_argument("--node-key", metavar="NAME",
                   help="the CTB node's key, when this PC holds it: it signs receipts (with --peer local) and the "
                        "receipt digests that carry many receipts to the village in one frame")
    p.add_argument("--key", metavar="NAME", default="bridge",
                   help="the key this bridge signs its uploads with (default 'bridge'; each node lists it with "
                        "`pen node peer add PUBLIC --role bridge`)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_run)
    s = p.add_subparsers(dest="bridge_cmd", metavar="ACTION")
    st = s.add_parser("status", help="peers, backlog and the last successful upload")
    st.add_argument("--db")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    rl = s.add_parser("release", help="send quarantined records again (after their dependency reached the node)")
    rl.add_argument("ids", nargs="*", help="record ids (32 hex digits); none: every quarantined record")
    rl.add_argument("--peer", help="only for this peer (default: every configured peer)")
    rl.add_argument("--db")
    rl.set_defaults(func=cmd_release)
    sd = s.add_parser("send", help="queue records (digests, openings, publications) for the village")
    sd.add_argument("file", help="a Pen record file (pen token export, ...)")
    sd.add_argument("--db")
    sd.set_defaults(func=cmd_send)


def _db(args):
    return args.db or str(home(args) / "bridge.sqlite")


def _peers(args):
    from pen.bridge.peers import HttpPeer, LocalPeer
    out = []
    signer = None
    if any(u.startswith(("http://", "https://")) for u in args.peer):
        try:
            signer = load_key(args, args.key)
        except PenError as e:
            raise PenError("%s; the bridge signs its uploads with it, and each node lists its public key "
                           "(pen node peer add KEY --role bridge)" % e)
    for url in args.peer:
        if url == "local":
            key = load_key(args, args.node_key) if args.node_key else None
            out.append(("local", LocalPeer(open_ctb(argparse_ns(args, db=args.ctb)), key)))
        elif url.startswith(("http://", "https://")):
            out.append((url, HttpPeer(url, signer=signer)))
        else:
            raise PenError("bad --peer %r: an http(s):// URL or 'local'" % url)
    return out


def argparse_ns(args, **kw):
    import argparse
    ns = argparse.Namespace(**vars(args))
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def cmd_run(args):
    from rich.console import Console
    from pen.bridge import driver, serial as S
    if (args.serial and args.pty_command) or not (args.serial or args.pty_command or args.meshtastic):
        raise PenError("give one of --serial PORT or --pty-command CMD, and/or --meshtastic RADIO")
    if not args.peer:
        raise PenError("give at least one --peer URL (records are queued until a peer takes them)")
    if (args.pair or args.new_code) and not args.meshtastic:
        raise PenError("--pair and --new-code are for stores over --meshtastic (a serial node pairs on the node)")
    console = Console(stderr=True)
    log = (lambda *a: None) if args.quiet else (lambda msg: console.log(msg))
    peers = _peers(args)
    if args.meshtastic:
        return _meshtastic(args, peers, log)
    proc = None
    try:
        if args.serial:
            port = S.SerialPort(args.serial)
        else:
            port, proc = S.spawn(args.pty_command)
    except OSError as e:
        raise PenError(str(e))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())

    def status(bridge, queue):
        st = queue.status([n for n, _ in peers])
        log("backlog %s; downlink %d; from node %d, acked %d, sent down %d (receipts in digests %d)" % (
            ", ".join("%s %d" % (n, p["backlog"]) for n, p in st["peers"].items()), st["downlink_backlog"],
            bridge.stats["delivered"], bridge.stats["acked"], bridge.stats["downlinked"],
            bridge.core.stats["receipts_in_digests"]))

    progress = None if args.quiet else UploadProgress(console)
    digests = None
    if args.node_key:  # receipts this key signed go down batched in digests (docs/mesh.md)
        from pen.bridge.digests import DigestSigner
        digests = DigestSigner(load_key(args, args.node_key))
    try:
        driver.run(port, _db(args), peers, log, stop, on_status=None if args.quiet else status,
                   on_batch=progress, digests=digests)
    except driver.LinkFailed as e:
        raise PenError("the node did not answer on %s: %s" % (port.name, e))
    except EOFError as e:
        raise PenError(str(e))
    finally:
        if progress is not None:
            progress.close()
        if proc is not None:
            proc.terminate()
    return 0


def _meshtastic(args, peers, log):
    from pen.transport import gateway
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    auth_store = gateway.pairing_store(args.pair, log if not args.quiet else print, args.new_code)
    try:
        if not (args.serial or args.pty_command):
            gateway.serve(args.meshtastic, _db(args), peers, log, stop, auth_store)
            return 0
        gateway.start_thread(args.meshtastic, _db(args), log, stop, auth_store)
    except (OSError, ValueError) as e:
        raise PenError("Meshtastic radio %s: %s" % (args.meshtastic, e))
    args.meshtastic = None
    try:
        return cmd_run(args)
    finally:
        stop.set()


class UploadProgress:
    """A rich progress bar per peer while a long backlog goes up (one
    batch of 500 or more left when it starts); short uploads just log."""
    LONG = 500

    def __init__(self, console):
        self.console = console
        self.bar = None
        self.tasks = {}

    def __call__(self, peer, sent, backlog):
        if peer not in self.tasks:
            if backlog < self.LONG:
                return
            from rich.progress import Progress
            if self.bar is None:
                self.bar = Progress(console=self.console)
                self.bar.start()
            self.tasks[peer] = self.bar.add_task("upload to %s" % peer, total=sent + backlog)
        self.bar.update(self.tasks[peer], completed=sent, total=sent + backlog)
        if backlog == 0:
            self.bar.remove_task(self.tasks.pop(peer))

    def close(self):
        if self.bar is not None:
            self.bar.stop()


def cmd_status(args):
    from pen.bridge.queue import BridgeQueue
    path = _db(args)
    if not os.path.exists(path):
        raise PenError("no bridge queue at %s" % path)
    q = BridgeQueue(path)
    peers = [p for p in (q.meta_get("peers", "") or "").split() if p]
    st = q.status(peers)
    for p in peers:
        last = st["peers"][p]["last_upload"]
        st["peers"][p]["last_upload"] = float(last) if last else None
        st["peers"][p]["rejected"] = [(i.hex(), r) for i, r in q.rejected(p)]
        st["peers"][p]["quarantined"] = [(i.hex(), r) for i, r in q.rejected(p, "quarantined")]
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title="bridge %s: %d records from the village, %d waiting to go down" % (
        path, st["uplink_records"], st["downlink_backlog"]))
    for col in ("peer", "backlog", "held", "outcomes", "last successful upload"):
        t.add_column(col)
    for p in peers:
        ps = st["peers"][p]
        last = ps["last_upload"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "never"
        t.add_row(p, str(ps["backlog"]), str(ps["held"]), ", ".join("%s %d" % kv for kv in sorted(ps["outcomes"].items())), when)
    Console().print(t)
    return 0


def cmd_send(args):
    from pen.bridge.queue import BridgeQueue
    from pen_protocol import records as R
    raws = read_bundle(args.file)
    for raw in raws:  # all or nothing
        try:
            R.parse(raw)
        except R.RecordError as e:
            raise PenError("%s holds a malformed record (%s); nothing queued" % (args.file, e.reason))
    q = BridgeQueue(_db(args))
    for raw in raws:
        q.queue_down(raw)
    n = len(raws)
    print("queued %d records for the village (%d waiting in all)" % (n, q.down_backlog()))
    return 0


def cmd_release(args):
    from pen.bridge.queue import BridgeQueue
    path = _db(args)
    if not os.path.exists(path):
        raise PenError("no bridge queue at %s" % path)
    ids = None
    if args.ids:
        try:
            ids = [bytes.fromhex(i) for i in args.ids]
        except ValueError:
            ids = []
        if len(ids) != len(args.ids) or any(len(i) != 16 for i in ids):
            raise PenError("a record id is 32 hex digits; nothing released")
    q = BridgeQueue(path)
    peers = [args.peer] if args.peer else [p for p in (q.meta_get("peers", "") or "").split() if p]
    n = sum(q.release(p, ids) for p in peers)
    print("released %d records: they go again at the next upload round" % n)
    return 0
