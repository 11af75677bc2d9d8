"""Replays the golden vectors in protocol/vectors/ with the protocol package:
the same file on CPython (tests/test_vectors.py imports it) and under
MicroPython (`micropython -m vectors_check VECTOR_DIR PART`, PART one of
cbor ids records frames ctb resign digests). Vector files hold one case a line, read
one at a time so the check fits a 64 KB heap. Prints 'N passed, M failed'
and exits non-zero on any failure."""
import sys
import json


def untyped(x):
    if isinstance(x, dict):
        if "b" in x:
            return bytes.fromhex(x["b"])
        return {k: untyped(v) for k, v in x["m"]}
    if isinstance(x, list):
        return [untyped(v) for v in x]
    return x


def h(s):
    return bytes.fromhex(s)


def cases(path):
    """Yield each case of a one-case-a-line JSON array file."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line in ("[", "]", ""):
                continue
            if line.endswith(","):
                line = line[:-1]
            yield json.loads(line)


class Checker:
    def __init__(self, vdir):
        self.vdir = vdir
        self.passed = 0
        self.failures = []

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)

    def raises(self, fn, exc, reason_attr, expected, what):
        try:
            fn()
        except exc as e:
            got = getattr(e, reason_attr) if reason_attr else str(e)
            self.ok(got == expected, "%s: got %r want %r" % (what, got, expected))
            return
        except Exception as e:  # any other exception is a failure too
            self.ok(False, "%s: raised %r" % (what, e))
            return
        self.ok(False, what + ": did not raise")

    def cbor(self):
        from pen_protocol import cbor
        for case in cases(self.vdir + "/cbor.json"):
            raw = h(case["hex"])
            if case["kind"] == "invalid":
                self.raises(lambda: cbor.loads(raw), cbor.CBORError, None, case["error"], "cbor reject " + case["hex"])
                continue
            val = untyped(case["value"])
            self.ok(cbor.dumps(val) == raw, "cbor encode " + case["hex"])
            self.ok(cbor.loads(raw) == val, "cbor decode " + case["hex"])
            self.raises(lambda: cbor.loads(raw + b"\x00"), cbor.CBORError, None, "trailing bytes",
                        "cbor trailing junk " + case["hex"])
            bad = 0
            for i in range(len(raw)):  # every strict prefix is an error, never another exception
                try:
                    cbor.loads(raw[:i])
                    bad += 1
                except cbor.CBORError:
                    pass
                except Exception:
                    bad += 1
            self.ok(bad == 0, "cbor prefixes of " + case["hex"])

    def ids(self):
        from pen_protocol import ids
        for case in cases(self.vdir + "/ids.json"):
            k = case["kind"]
            if k == "valid":
                self.ok(ids.pack(case["digits"]).hex() == case["hex"], "pack " + case["digits"])
                self.ok(ids.unpack(h(case["hex"])) == case["digits"], "unpack " + case["hex"])
            elif k == "invalid-digits":
                try:
                    ids.pack(case["digits"])
                    self.ok(False, "pack accepted " + case["digits"])
                except ids.ProductIdError:
                    self.passed += 1
            else:
                self.ok(not ids.is_valid(h(case["hex"])), "unpack accepted " + case["hex"])

    def records(self, resign=False):
        from pen_protocol import cbor, records as R
        if resign:
            from pen_protocol import ed25519
        for case in cases(self.vdir + "/records.json"):
            raw = h(case["hex"]) + bytes(case.get("pad", 0))
            if case["kind"] == "invalid":
                self.raises(lambda: R.parse(raw), R.RecordError, "reason", case["reason"],
                            "record reject " + case["what"])
                continue
            r = R.parse(raw)
            name = case["name"]
            if resign:
                if case["seed"]:
                    seed = h(case["seed"])
                    again = R.encode(r.type, untyped(case["fields"]), lambda m: ed25519.sign(seed, m))
                    self.ok(again.raw == raw, "re-signed byte for byte " + name)
                continue
            self.ok(r.type == case["type"] and r.id.hex() == case["id"], "record " + name)
            self.ok(r.fields == untyped(case["fields"]), "record fields " + name)
            if case["signed"] is not None:
                self.ok(r.signed_message().hex() == case["signed"], "signed bytes " + name)
            self.ok(cbor.dumps(r.fields) == r.body, "body re-encodes to the same bytes " + name)

    def frames(self):
        from pen_protocol import frame as F
        for case in cases(self.vdir + "/frames.json"):
            k = case["kind"]
            if k == "valid":
                raw = h(case["hex"])
                hdr, payload = F.parse(raw)
                got = [hdr.type, hdr.src, hdr.dst, hdr.origin, hdr.hop_limit, hdr.hop_start,
                       [hdr.frag_index, hdr.frag_count], bytes(payload).hex()]
                want = [case["type"], case["src"], case["dst"], case["origin"], case["hop_limit"],
                        case["hop_start"], case["frag"], case["payload"]]
                self.ok(got == want, "frame parse %s: %r" % (case["hex"][:20], got))
                self.ok(F.frame_id(raw).hex() == case["frame_id"], "frame id " + case["hex"][:20])
                self.ok(F.record_of(hdr, payload).hex() == case["record"], "record of frame")
                self.ok(F.pack(hdr, payload) == raw, "frame re-pack " + case["hex"][:20])
            elif k == "fragmented":
                rec = h(case["record"])
                frames = F.fragment(rec, 0x0007, 0x0001, 0x0007, 9)
                self.ok([x.hex() for x in frames] == case["frames"], "fragments byte for byte")
                fids = [F.frame_id(x) for x in frames]
                self.ok(len(set(fids)) == len(fids), "fragments have distinct ids")
                ra = F.Reassembler()
                out = None
                for x in reversed(frames):  # out of order
                    hdr, payload = F.parse(x)
                    out = ra.add(hdr, payload)
                self.ok(out == rec, "reassembled out of order")
            elif k == "ack":
                self.ok(F.ack_frame([h(x) for x in case["ids"]], case["src"], case["dst"]).hex() == case["hex"],
                        "ack bytes")
                hdr, payload = F.parse(h(case["hex"]))
                self.ok(hdr.type == F.T_ACK and [x.hex() for x in F.ack_ids(payload)] == case["ids"], "ack ids")
            elif k == "bundle":
                want = [[e[0], h(e[1])] for e in case["entries"]]
                hdr, payload = F.parse(h(case["hex"]))
                got = F.bundle_records(payload)
                self.ok(hdr.type == F.T_BUNDLE and [[o, r] for o, r in got] == want, "bundle entries")
                built = F.bundle_frame(F.Header(F.T_BUNDLE, hdr.src, hdr.dst, hdr.origin, hdr.hop_limit),
                                       [(o, r[0], r[1:]) for o, r in want])
                self.ok(bytes(built).hex() == case["hex"], "bundle bytes")
            elif k == "bad-bundle":
                self.ok(F.bundle_records(h(case["payload"])) is None, "bad bundle refused: " + case["what"])
            elif k == "identity":
                from pen_protocol import identity as I
                raw = h(case["record"])
                self.ok(I.record_id(raw).hex() == case["id"], "record id " + case["name"])
                ref = I.token_ref(raw)
                self.ok((ref or b"").hex() == case["token"], "token ref " + case["name"])
            elif k == "sealed":
                key = F.net_key(h(case["secret"]))
                self.ok(F.seal(h(case["frame"]), key).hex() == case["hex"], "sealed bytes")
                self.ok(F.unseal(h(case["hex"]), key) == len(case["frame"]) // 2, "unsealed")
            elif k == "bad-seal":
                self.ok(F.unseal(h(case["hex"]), F.net_key(h(case["secret"]))) == -1, "seal refused: " + case["what"])
            elif k == "bad-ack":
                self.raises(lambda: F.ack_ids(h(case["payload"])), F.FrameError, "reason", case["reason"], "bad ack")
            else:
                raw = h(case["hex"])
                self.raises(lambda: F.parse(raw), F.FrameError, "reason", case["reason"],
                            "frame reject " + case["what"])

    def ctb(self):
        from pen_protocol import ctb
        base = ctb.MemoryState()
        led = ctb.Ledger(base)
        for case in cases(self.vdir + "/ctb.json"):
            if case["kind"] == "base":
                v = led.submit(h(case["hex"]))
                self.ok(v.code == ctb.ACCEPTED, "base record %s: %r" % (case["hex"][:12], v))
                continue
            ov = ctb.Overlay(base)
            lo = ctb.Ledger(ov)
            recs = case["records"]
            last = None
            for i in range(len(recs)):
                last = lo.submit(h(recs[i]))
                if i < len(recs) - 1:
                    self.ok(last.code == ctb.ACCEPTED, "%s: setup record %d %r" % (case["what"], i, last))
            self.ok((last.code, last.reason) == (case["code"], case["reason"]),
                    "%s: got %s/%s want %s/%s" % (case["what"], last.code, last.reason, case["code"], case["reason"]))
            if case["code"] == ctb.REJECTED and len(recs) == 1:
                self.ok(not ov.added and not ov.kv, "%s changed state" % case["what"])

    def digests(self):
        from pen_protocol import digest as G, frame as F
        for case in cases(self.vdir + "/digests.json"):
            raw = h(case["hex"])
            k = case["kind"]
            if k == "valid":
                d = G.parse(raw)
                what = "digest of %d" % len(case["entries"])
                self.ok(d.kid.hex() == case["kid"] and d.time == case["time"], what + " head")
                self.ok([[r.hex(), u.hex()] for r, u in d.entries] == case["entries"], what + " entries")
                self.ok(G.message(raw).hex() == case["signed"] and d.id().hex() == case["id"], what + " signed bytes")
                f = h(case["frame"])
                hdr, payload = F.parse(f)
                self.ok(hdr.type == F.T_DIGEST and bytes(payload) == raw[1:], what + " frame")
                self.ok(F.digest_entries(payload) == len(case["entries"]) == G.shape(raw), what + " shape")
                self.ok(G.verify(raw, [h(case["key"])])[1] is None, what + " verifies")
            elif k == "invalid":
                self.raises(lambda: G.parse(raw), G.DigestError, "reason", case["reason"], "digest " + case["what"])
                if case["reason"] != "duplicate-entry":  # the node reads the shape only
                    self.ok(G.shape(raw) == case["reason"], "shape " + case["what"])
            else:
                got = G.verify(raw, [h(case["key"])])[1]
                self.ok(got == case["why"], "verify %s: got %r" % (case["what"], got))

    def run(self, part):
        fn = {"cbor": self.cbor, "ids": self.ids, "records": self.records, "frames": self.frames,
              "ctb": self.ctb, "resign": lambda: self.records(resign=True), "digests": self.digests}[part]
        try:
            fn()
        except Exception as e:
            self.failures.append("%s crashed: %r" % (part, e))
        return self.passed, self.failures


PARTS = ("cbor", "ids", "records", "frames", "ctb", "resign", "digests")


def main(argv):
    vdir = argv[1] if len(argv) > 1 else "protocol/vectors"
    parts = argv[2:] or PARTS
    passed = 0
    failures = []
    for part in parts:
        p, f = Checker(vdir).run(part)
        passed += p
        failures += f
    for f in failures:
        print("FAIL:", f)
    print("%d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
