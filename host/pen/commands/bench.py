"""pen bench sizes|sync|ingest — benchmarks print measured numbers."""
import json

from pen_protocol import airtime, frame as F, records as R

SETTINGS = {
    "sf9-bw125": dict(sf=9, bw_hz=125000, cr=5, preamble=8),
    "sf11-bw250": dict(sf=11, bw_hz=250000, cr=5, preamble=16),
}


def register(sub):
    p = sub.add_parser("bench", help="benchmarks that print measured figures")
    s = p.add_subparsers(dest="bench_cmd", metavar="BENCH")
    s.required = True
    z = s.add_parser("sizes", help="every frame type: bytes on air and LoRa airtime")
    z.add_argument("--json", action="store_true")
    z.set_defaults(func=cmd_sizes)
    for name, fn, helptext in EXTRA:
        e = s.add_parser(name, help=helptext)
        e.add_argument("--json", action="store_true")
        e.set_defaults(func=fn)
        if name == "ingest":
            e.add_argument("--db", metavar="URL", help="postgresql://... : ingest into PostgreSQL on that server (a "
                                                       "fresh database each round; the role needs CREATEDB)")
            e.add_argument("--single", action="store_true",
                           help="single-record POSTs per second over HTTP to one node instead")
            e.add_argument("--phases", action="store_true",
                           help="where one core's CPU goes per record instead (parse, lookups, rules, write, "
                                "commit; signatures aside)")
            e.add_argument("--grown", type=int, metavar="N", nargs="?", const=200000,
                           help="into a SQLite CTB whose records table already holds N rows (default 200000), "
                                "with the store's cache settings and with SQLite's defaults")


def frame_sizes():
    from pen.samples import economy
    _, _, named = economy()
    out = {}
    for name, rec in named.items():
        frames = F.fragment(rec.raw, 0x0001, 0x0002, 0x0001, 1)
        out[name] = _on_air(frames, len(rec.raw))
    out["link-ack"] = _on_air([F.ack_frame([b"\x00\x01\x02\x03"], 1, 2)], 0)
    out["beacon"] = _on_air([F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes(4))], 0)
    out.update(digest_sizes())
    return out


DIGEST_SIZES = (1, 2, 4, 7, 14)  # receipts named by one digest


def digest_sizes():
    """Receipt digests (pen.bridge.digests) naming n receipts: bytes and
    airtime in all and per receipt, beside one ACCOUNTED frame a receipt
    (which also travels every hop of its payment's path; a digest is one
    frame from the bridge, relayed by the nodes on the named paths)."""
    from pen.bridge.digests import DigestSigner
    from pen.samples import T0, accounted_batch, keys
    node = keys()["common-node"]
    batch = accounted_batch(node, max(DIGEST_SIZES))
    one = _on_air([F.record_frame(batch[0], 1, 2, 1)], len(batch[0]))
    out = {}
    for n in DIGEST_SIZES:
        raw, _ = DigestSigner(node, clock=lambda: T0).sign(batch[:n])
        d = _on_air([F.fragment(raw, 1, F.BROADCAST, 1, 0)[0]], len(raw))
        d["receipts"] = n
        d["bytes_per_receipt"] = round(d["bytes"] / n, 1)
        d["airtime_ms_per_receipt"] = {k: round(v / n, 1) for k, v in d["airtime_ms"].items()}
        d["vs_accounted_frames"] = {k: round(one["airtime_ms"][k] * n / v, 2) for k, v in d["airtime_ms"].items()}
        out["digest-%d" % n] = d
    return out


def _on_air(frames, record_bytes):
    """Bytes and airtime of frames as sent: each sealed with the village
    key's tag (frame.TAG_LEN bytes); mac_* say what the tag costs."""
    sealed = [len(f) + F.TAG_LEN for f in frames]

    def air(lengths, v):
        return round(sum(airtime.time_on_air_us(n, **v) for n in lengths) / 1000, 1)
    return {"record_bytes": record_bytes, "bytes": sum(sealed), "frames": len(frames),
            "mac_bytes": F.TAG_LEN * len(frames),
            "airtime_ms": {k: air(sealed, v) for k, v in SETTINGS.items()},
            "mac_airtime_ms": {k: round(air(sealed, v) - air([len(f) for f in frames], v), 1)
                               for k, v in SETTINGS.items()}}


def cmd_sizes(args):
    sizes = frame_sizes()
    from pen.sim.power import leaf_preamble_cost
    to_leaf = leaf_preamble_cost(SETTINGS)
    if args.json:
        print(json.dumps({"frames": sizes, "settings": SETTINGS, "header_bytes": F.HEADER_LEN,
                          "tag_bytes": F.TAG_LEN, "to_leaf": to_leaf}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title="Pen frames on air (8-byte mesh header and %d-byte village MAC included; USE with 12-digit "
                    "ids, the worst case, in its compact form)" % F.TAG_LEN)
    t.add_column("frame")
    t.add_column("record B", justify="right")
    t.add_column("on air B", justify="right")
    t.add_column("frames", justify="right")
    t.add_column("MAC B", justify="right")
    t.add_column("MAC ms SF9", justify="right")
    t.add_column("SF9/BW125 ms", justify="right")
    t.add_column("SF11/BW250 ms", justify="right")
    for name, s in sizes.items():
        t.add_row(name, str(s["record_bytes"] or "-"), str(s["bytes"]), str(s["frames"]), str(s["mac_bytes"]),
                  "%.1f" % s["mac_airtime_ms"]["sf9-bw125"],
                  "%.1f" % s["airtime_ms"]["sf9-bw125"], "%.1f" % s["airtime_ms"]["sf11-bw250"])
    t.add_row("+ to a leaf", "", "", "", "", "", "+%.1f" % to_leaf["extra_ms"]["sf9-bw125"],
              "+%.1f" % to_leaf["extra_ms"]["sf11-bw250"])
    Console().print(t)
    d = Table(title="Receipts back: one ACCOUNTED frame each vs one signed digest (T_DIGEST) naming n")
    for c in ("frame", "receipts", "on air B", "B / receipt", "SF9 ms / receipt", "SF11/BW250 ms / receipt",
              "x fewer bridge ms (SF9)"):
        d.add_column(c, justify="right" if c != "frame" else "left")
    a = sizes["accounted"]
    d.add_row("accounted", "1", str(a["bytes"]), str(a["bytes"]), "%.1f" % a["airtime_ms"]["sf9-bw125"],
              "%.1f" % a["airtime_ms"]["sf11-bw250"], "1.00")
    for name, s in sizes.items():
        if name.startswith("digest-"):
            d.add_row(name, str(s["receipts"]), str(s["bytes"]), "%.1f" % s["bytes_per_receipt"],
                      "%.1f" % s["airtime_ms_per_receipt"]["sf9-bw125"],
                      "%.1f" % s["airtime_ms_per_receipt"]["sf11-bw250"], "%.2f" % s["vs_accounted_frames"]["sf9-bw125"])
    Console().print(d)
    return 0


def _lazy(modname, fname):
    def run(args):
        import importlib
        return getattr(importlib.import_module(modname), fname)(args)
    return run


# benches other modules provide: (name, handler, help)
EXTRA = [
    ("sync", _lazy("pen.sync.bench", "cmd"), "set reconciliation between two CTB replicas"),
    ("ingest", _lazy("pen.ingest_bench", "cmd"), "validated+stored records per second vs bare verify"),
]
