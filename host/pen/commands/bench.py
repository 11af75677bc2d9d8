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


def frame_sizes():
    from pen.samples import economy
    _, _, named = economy()
    out = {}
    for name, rec in named.items():
        frames = F.fragment(rec.raw, 0x0001, 0x0002, 0x0001, 1)
        out[name] = _on_air(frames, len(rec.raw))
    out["link-ack"] = _on_air([F.ack_frame([b"\x00\x01\x02\x03"], 1, 2)], 0)
    out["beacon"] = _on_air([F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes(4))], 0)
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
