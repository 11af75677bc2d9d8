"""Generates the golden vectors in protocol/vectors/ (run: python -m pen.vectors).

Every vector is made by the real code from the deterministic sample economy
(pen.samples), so regenerating must give byte-identical files; a test checks
that. The checker (tests/mpy/vectors_check.py) replays them on CPython and
under MicroPython."""
import json
import sys
from pathlib import Path

from pen import build as B
from pen.samples import economy, keys as samples_keys
from pen_protocol import cbor, ctb, frame as F, ids, records as R

OUT = Path(__file__).resolve().parents[2] / "protocol" / "vectors"


def typed(x):
    """JSON cannot say bytes or int-keyed maps: {"b": hex}, {"m": [[k, v]...]}."""
    if isinstance(x, bytes):
        return {"b": x.hex()}
    if isinstance(x, dict):
        return {"m": [[k, typed(v)] for k, v in sorted(x.items())]}
    if isinstance(x, list):
        return [typed(v) for v in x]
    return x


def cbor_vectors():
    valid = [0, 1, 23, 24, 255, 256, 65535, 65536, 0xFFFFFFFF, 0x100000000, 2 ** 64 - 1,
             -1, -24, -25, -256, -257, -(2 ** 64), b"", b"\x00\xff", "", "a", "ü€𝄞",
             [], [1, [2, [3]]], {}, {1: 2, -1: 3, 24: 4, 0: None}, True, False, None,
             ["x" * 30, b"y" * 300, list(range(30))]]
    bad = [
        ("18", "truncated head"), ("1817", "non-shortest integer or length"),
        ("190017", "non-shortest integer or length"), ("1a0000ffff", "non-shortest integer or length"),
        ("1b00000000ffffffff", "non-shortest integer or length"), ("5f", "indefinite length or reserved head"),
        ("9f01ff", "indefinite length or reserved head"), ("1c", "indefinite length or reserved head"),
        ("0101", "trailing bytes"), ("44616263", "string longer than input"), ("61ff", "invalid UTF-8 in text string"),
        ("a202010100", "map keys unsorted or duplicate"), ("a201010100", "map keys unsorted or duplicate"), ("a2020101", "map longer than input"),
        ("a1616101", "map keys must be integers"), ("f93c00", "unsupported simple value or float"),
        ("fb3ff0000000000000", "unsupported simple value or float"), ("c100", "unsupported major type (tag)"),
        ("f7", "unsupported simple value or float"), ("", "truncated"), ("9a00010000", "array longer than input"),
        ("81" * 17 + "00", "nesting too deep"), ("f818", "unsupported simple value or float"),
    ]
    return [{"kind": "valid", "hex": cbor.dumps(v).hex(), "value": typed(v)} for v in valid] + \
        [{"kind": "invalid", "hex": h, "error": e} for h, e in bad]


def id_vectors():
    valid = ["40", "401", "40141600", "401416000012", "99999999999", "00"]
    bad = ["4", "4014160000123", "40a1"]
    bad_raw = ["", "4a", "f0", "40f1", "4f00", "40141600001234"]
    return [{"kind": "valid", "digits": d, "hex": ids.pack(d).hex()} for d in valid] + \
        [{"kind": "invalid-digits", "digits": d} for d in bad] + [{"kind": "invalid-hex", "hex": x} for x in bad_raw]


def _signer_seed(keys, r):
    """The demo seed that signed r (sample keys come from public phrases)."""
    if r.type == R.CONFLICT:
        return None
    for s in keys.values():
        if R.sign.verify(s.public_key, r.signed_message(), r.sig):
            return s.seed.hex()
    return None


def record_vectors():
    keys, _, named = economy()
    valid = []
    for name, r in named.items():
        valid.append({"kind": "valid", "name": name, "hex": r.raw.hex(), "id": r.id.hex(), "type": r.type,
                      "fields": typed(r.fields),
                      "signed": (R.sign.domain(r.name.encode()) + r.body).hex() if r.type != R.CONFLICT else None,
                      "seed": _signer_seed(keys, r)})
    use = named["use"].raw
    body_end = len(use) - 64
    bad = [
        ("empty", b"", "empty"),
        ("unknown type", b"\x0e" + use[1:], "unknown-type"),
        ("type zero", b"\x00" + use[1:], "unknown-type"),
        ("truncated signature", use[:-1], "bad-length"),
        ("trailing byte", use + b"\x00", "bad-length"),
        ("truncated body", use[:5], "malformed"),
        ("body not an array", b"\x0a\x01" + use[body_end:], "not-array"),
        ("missing field", b"\x0a" + cbor.dumps(named["use"].fields[:2]) + use[body_end:], "field-count"),
        ("ref of 7 bytes", b"\x0a" + cbor.dumps([b"1234567"] + named["use"].fields[1:]) + use[body_end:], "bad-field"),
        ("bad BCD product", b"\x0a" + cbor.dumps([named["use"].fields[0], b"\x4a", b"\x40"]) + use[body_end:],
         "bad-field"),
        ("non-canonical body (long head)", b"\x0a\x98\x03" + use[2:], "malformed"),
        ("vote choice 3", b"\x06" + cbor.dumps(named["vote"].fields[:2] + [3]) + bytes(64), "bad-field"),
    ]
    out = valid + [{"kind": "invalid", "what": w, "hex": h.hex(), "reason": e} for w, h, e in bad]
    # one byte over the limit, written as a prefix plus zero padding to keep the line short
    out.append({"kind": "invalid", "what": "oversized", "hex": "0c", "pad": R.MAX_RECORD, "reason": "too-long"})
    return out


def frame_vectors():
    _, _, named = economy()
    out = []
    for rec, src, dst, origin, hops in ((named["use"], 0x0012, 0x0003, 0x0012, 3), (named["vote"], 0x00A0, 0xFFFF,
                                                                                       0x0001, 5)):
        f = F.record_frame(rec.raw, src, dst, origin, hops)
        out.append({"kind": "valid", "hex": f.hex(), "type": rec.type, "src": src, "dst": dst, "origin": origin,
                             "hop_limit": hops, "hop_start": hops, "frag": [0, 1],
                             "payload": bytes(F.parse(f)[1]).hex(),  # a USE in its compact form
                             "frame_id": F.frame_id(f).hex(), "record": rec.raw.hex()})
    rel = F.relay(F.record_frame(named["use"].raw, 0x12, 0x3, 0x12, 3), 0x0003, 0x0001)
    out.append({"kind": "valid", "hex": rel.hex(), "type": 10, "src": 3, "dst": 1, "origin": 0x12, "hop_limit": 2,
                         "hop_start": 3, "frag": [0, 1], "payload": bytes(F.parse(rel)[1]).hex(),
                         "frame_id": F.frame_id(rel).hex(), "record": named["use"].raw.hex()})
    long_rec = R.encode(R.CONFLICT, [named["council"].raw, named["votation-close"].raw]).raw
    frags = F.fragment(long_rec, 0x0007, 0x0001, 0x0007, 9)
    out.append({"kind": "fragmented", "record": long_rec.hex(), "frames": [x.hex() for x in frags]})
    ack = F.ack_frame([bytes.fromhex("01020304"), bytes.fromhex("a0b0c0d0")], 0x0003, 0x0012)
    out.append({"kind": "ack", "hex": ack.hex(), "ids": ["01020304", "a0b0c0d0"], "src": 3, "dst": 0x12})
    # the tag: a frame sealed under a test secret, and what unseal refuses
    key = F.net_key(b"pen/1/vector-village-secret")
    u = F.record_frame(named["use"].raw, 0x12, 0x3, 0x12, 3)
    sealed = F.seal(u, key)
    out.append({"kind": "sealed", "secret": b"pen/1/vector-village-secret".hex(), "frame": u.hex(),
                "hex": sealed.hex()})
    for what, h in (("tag flipped", sealed[:-1] + bytes((sealed[-1] ^ 1,))), ("body flipped",
                    sealed[:9] + bytes((sealed[9] ^ 1,)) + sealed[10:]), ("too short for a tag", u[:10]),
                    ("other key", F.seal(u, F.net_key(b"pen/1/another-village")))):
        out.append({"kind": "bad-seal", "what": what, "secret": b"pen/1/vector-village-secret".hex(),
                    "hex": h.hex()})
    u = F.record_frame(named["use"].raw, 0x12, 0x3, 0x12, 3)
    for what, h, reason in (
            ("truncated header", u[:7], "truncated"), ("empty payload", u[:8], "empty-payload"),
            ("type zero", b"\x00" + u[1:], "bad-type"), ("type 0x40", b"\x40" + u[1:], "bad-type"),
            ("ctl bit 7 on a vote", b"\x06" + u[1:2] + u[2:], "bad-ctl"),
            ("ctl bit 7 with FRAG", u[:1] + b"\xdb" + u[2:], "bad-ctl"),
            ("hop limit above start", u[:1] + b"\x0b" + u[2:], "bad-hops"),
            ("too long", u[:1] + u[1:] + bytes(256 - len(u)), "too-long"),
            ("fragment index beyond count", bytes.fromhex("0a5b00010002000131") + b"\x09" + b"x", "bad-fragment"),
            ("fragment count 1", bytes.fromhex("0a5b00010002000100") + b"\x09" + b"x", "bad-fragment"),
            ("fragment truncated", bytes.fromhex("0a5b00010002000131"), "truncated")):
        out.append({"kind": "invalid", "what": what, "hex": h.hex() if isinstance(h, bytes) else h, "reason": reason})
    out += [{"kind": "bad-ack", "payload": "010203", "reason": "bad-ack"},
            {"kind": "bad-ack", "payload": "", "reason": "bad-ack"}]
    # a bundle: two custody records for one next hop (frame.bundle_frame)
    entries = [(0x0012, named["use"].raw), (0x0007, named["vote"].raw)]
    bf = bytes(F.bundle_frame(F.Header(F.T_BUNDLE, 0x0012, 0x0003, 0x0012, 3),
                              [(o, r[0], r[1:]) for o, r in entries]))
    out.append({"kind": "bundle", "hex": bf.hex(), "entries": [[o, r.hex()] for o, r in entries]})
    for what, payload in (("entry past the end", "0012" + "ff" + "0a"), ("record of one byte", "0012010a"),
                          ("control type inside", "00120524000000"), ("short entry head", "0012"),
                          ("no record", "00010205")):
        out.append({"kind": "bad-bundle", "what": what, "payload": payload})
    # identity: the one record id and token ref, for every record type
    for name in sorted(named):
        raw = named[name].raw
        out.append({"kind": "identity", "name": name, "record": raw.hex(), "id": named[name].id.hex(),
                    "token": (named[name].token_ref or b"").hex()})
    return out


def ctb_vectors():
    """A base CTB (the sample economy without its double spend), then cases:
    records applied on top of the base, each with the verdict it must get."""
    k, ordered, n = economy()
    base = ordered[:-1]  # last is the second USE
    fp, hub, fed, vc, shop = k["formosa-plumbing"], k["supply-hub"], k["valley-federation"], \
        k["village-consumers"], k["village-store"]
    from pen.keys import Signer
    stranger = Signer.from_phrase("stranger")
    tok = n["issue"].fields[0]
    prop = n["proposal"].fields[0]
    vref = n["votation-open"].fields[0]
    forged = bytearray(n["use"].raw)
    forged[-1] ^= 1
    forged_new = bytearray(ordered[-1].raw)
    forged_new[-5] ^= 0x10
    t2 = B.issue(fp, 2, 25000, prop)
    everyone = [fed, fp, vc, hub, shop]
    park = B.votation_open(hub, 5, "other", "a park", everyone, 10)
    cases = [
        ("duplicate record", [n["use"].raw], "duplicate", "duplicate"),
        ("forged signature on a record already held: nothing changes", [bytes(forged)], "duplicate", "duplicate"),
        ("forged signature (one bit flipped) on a new USE", [bytes(forged_new)], "rejected", "bad-signature"),
        ("forged USE of another token content", [bytes(B.use(fp, tok, "40141600", "40141600").raw[:-64]) + bytes(64)],
         "rejected", "bad-signature"),
        ("SET_USER signed by a council that is not the issuer", [t2.raw, B.set_user(hub, t2.fields[0], hub).raw],
         "rejected", "bad-signature"),
        ("SET_USER on a token missing from the CTB", [B.set_user(fp, R.make_ref(fp.kid, 99), fp).raw],
         "rejected", "unknown-token"),
        ("second SET_USER", [B.set_user(fp, tok, hub).raw], "rejected", "already-usable"),
        ("USE signed by someone other than the user", [t2.raw, B.set_user(fp, t2.fields[0], fp).raw,
                                                       B.use(hub, t2.fields[0], "40141600", "40141600").raw],
         "rejected", "bad-signature"),
        ("USE before a user is set", [t2.raw, B.use(fp, t2.fields[0], "40141600", "40141600").raw],
         "rejected", "not-usable"),
        ("second USE of a token: double spend", [B.use(fp, tok, "40171500", "40171500").raw], "conflict",
         "double-spend"),
        ("issuance beyond the approved amount", [B.issue(fp, 3, 25001, prop).raw], "rejected", "over-cap"),
        ("issuance under another council's proposal", [B.issue(hub, 1, 10, prop).raw], "rejected", "not-issuer"),
        ("issuance with no approved proposal", [B.proposal(hub, 1, 2026, [("40141600", 1, 10)]).raw,
                                                B.issue(hub, 1, 10, R.make_ref(hub.kid, 1)).raw],
         "rejected", "not-approved"),
        ("second vote of one council", [B.vote(fed, vref, "no").raw], "conflict", "double-vote"),
        ("vote by a council outside the electorate", [B.council(stranger, "Stranger", "consumption").raw,
                                                      B.vote(stranger, vref, "yes").raw],
         "rejected", "not-in-electorate"),
        ("vote on an unknown votation", [B.vote(vc, R.make_ref(fp.kid, 77), "yes").raw], "rejected",
         "unknown-votation"),
        ("vote after close is kept, not counted", [B.vote(hub, vref, "no").raw], "accepted", ""),
        ("close that misstates the tally", [park.raw, R.encode(R.VOTATION_CLOSE, [park.fields[0], park.id,
                                                                                   1, 0, 0, [], 20], hub).raw],
         "rejected", "tally-mismatch"),
        ("votation whose electorate is the opener alone", [B.votation_open(hub, 6, "other", "a park", [hub], 10).raw],
         "rejected", "bad-electorate"),
        ("votation pinned to a membership epoch that does not exist",
         [B.votation_open(hub, 6, "other", "a park", everyone, 10, epoch=1).raw], "rejected", "unknown-epoch"),
        ("ADMIT opened by a council that is not the economy's federation",
         [B.council(stranger, "Stranger", "consumption").raw,
          B.votation_open(hub, 6, "admit", B.membership_about(B.council(stranger, "Stranger", "consumption")),
                          everyone, 10).raw], "rejected", "not-the-federation"),
        ("approval votation outside the proposal's year", [B.votation_open(fp, 6, "approve", prop, everyone,
                                                                           1830000000).raw],
         "rejected", "wrong-year"),
        ("receipt signed by an admitted council's own key", [B.accounted(fed, tok, n["use"].id, 5).raw],
         "rejected", "not-a-ctb-node"),
        ("CTB node key certified by a member council", [B.member(hub, stranger, "node").raw],
         "rejected", "not-the-federation"),
        ("a USE after the token was accounted: evidence, moves no credit",
         [B.use(fp, tok, "11", "11").raw], "conflict", "double-spend"),
        ("receipt signed by a key that is not a CTB node", [B.council(stranger, "Stranger", "consumption").raw,
                                                             B.accounted(stranger, tok, n["use"].id, 5).raw],
         "rejected", "not-a-ctb-node"),
        ("malformed bytes", [b"\x0a\xff\xff"], "rejected", "malformed"),
        ("conflict evidence naming records this CTB lacks", [R.conflict(B.use(fp, tok, "11", "11"),
                                                                        B.use(fp, tok, "12", "12")).raw],
         "rejected", "unknown-record"),
    ]
    from pen.economy.vectorcases import cases as economy_cases
    cases += economy_cases(k, n)
    # the forged-signature case: flipping a signature bit gives another record with the same id (the id
    # covers content), so it is a duplicate of the genuine USE; a forged new USE is case 3.
    return [{"kind": "base", "hex": r.raw.hex()} for r in base] + \
        [{"kind": "case", "what": w, "records": [x.hex() for x in recs], "code": code, "reason": reason}
         for w, recs, code, reason in cases]


def digest_vectors():
    """Receipt digests (pen_protocol.digest): valid ones with their fields,
    signed bytes and frame; malformed ones with the reason; and what verify
    says against a pinned key."""
    from pen.bridge.digests import DigestSigner
    from pen.samples import T0, accounted_batch
    from pen_protocol import digest as G
    k = samples_keys()
    node, other = k["common-node"], k["supply-hub"]
    out = []
    good = None
    for n in (1, 3, G.MAX_ENTRIES):
        raw, _ = DigestSigner(node, clock=lambda: T0 + n).sign(accounted_batch(node, n))
        d = G.parse(raw)
        good = good or raw
        frame = F.fragment(raw, 0x0001, F.BROADCAST, 0x0001, 0, 7)[0]
        out.append({"kind": "valid", "hex": raw.hex(), "kid": d.kid.hex(), "time": d.time,
                    "entries": [[r.hex(), u.hex()] for r, u in d.entries], "signed": G.message(raw).hex(),
                    "id": d.id().hex(), "frame": frame.hex(), "key": node.public_key.hex()})
    three = bytes.fromhex(out[1]["hex"])
    for what, raw, reason in (
            ("empty", b"", "not-a-digest"), ("a record's type byte", b"\x0b" + three[1:], "not-a-digest"),
            ("truncated below one entry", three[:84], "truncated"), ("cut inside an entry", three[:-5], "bad-length"),
            ("fifteen entries", three[:9] + three[9:21] * 15 + three[-64:], "too-long"),
            ("one entry twice", three[:9] + three[9:21] * 2 + three[-64:], "duplicate-entry")):
        out.append({"kind": "invalid", "what": what, "hex": raw.hex(), "reason": reason})
    for what, raw, pk, why in (
            ("pinned key", three, node, None), ("signature flipped", three[:-1] + bytes((three[-1] ^ 1,)), node,
                                                "bad-signature"),
            ("an entry dropped", three[:-64 - 12] + three[-64:], node, "bad-signature"),
            ("unpinned key", three, other, "unpinned-key")):
        out.append({"kind": "verify", "what": what, "hex": raw.hex(), "key": pk.public_key.hex(), "why": why})
    return out


def generate():
    from pen.linkvectors import linkauth_vectors
    return {"cbor.json": cbor_vectors(), "ids.json": id_vectors(), "records.json": record_vectors(),
            "frames.json": frame_vectors(), "ctb.json": ctb_vectors(), "linkauth.json": linkauth_vectors(),
            "digests.json": digest_vectors()}


def dump(cases):
    """A JSON array with one case a line, so a 64 KB MicroPython heap can
    read it a line at a time."""
    lines = [json.dumps(c, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for c in cases]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv=None):
    OUT.mkdir(parents=True, exist_ok=True)
    for name, obj in generate().items():
        (OUT / name).write_text(dump(obj), encoding="utf-8")
        print("wrote", OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
