# Replays protocol/vectors/linkauth.json with pen_protocol.linkauth: the same
# file on CPython (test_linkauth_vectors.py imports it) and under MicroPython
# (micropython -m linkauth_vectors_check VECTOR_FILE). One case a line, so it
# reads in a small heap. Prints "N passed, M failed".
import json
import sys

from pen_protocol import link as L
from pen_protocol import linkauth as A


def h(s):
    return bytes.fromhex(s)


def check(c):
    k = c["kind"]
    if k == "x25519":
        return A.x25519(h(c["k"]), h(c["u"])) == h(c["out"])
    if k == "generator":
        return A.generator(c["code"].encode(), h(c["pk"]), h(c["nonce"])) == h(c["g"])
    if k == "pairing":
        ph = A.Pairing(c["code"], h(c["pk"]), A.HashRand(b"phone-rand"))
        nd = A.Pairing(c["node_code"], h(c["pk"]), A.HashRand(b"node-rand"))
        start = ph.start()
        ans = nd.answer(start)
        fin = ph.finish(ans)
        ok = start == h(c["start"]) and ans == h(c["answer"])
        if c["finish"] is None:
            return ok and fin is None and ph.psk is None
        return ok and fin == h(c["finish"]) and ph.psk == h(c["psk"]) and nd.confirm(fin) and nd.psk == ph.psk
    if k == "seal":
        s = A.Session(h(c["psk"]), b"p" * 16, b"n" * 16, c["role"].encode())
        sealed = [s.seal(h(c["inner"])) for _ in range(2)]
        peer = A.Session(h(c["psk"]), b"p" * 16, b"n" * 16, b"node" if c["role"] == "phone" else b"phone")
        return ([x.hex() for x in sealed] == c["sealed"] and peer.open(sealed[0]) == h(c["inner"])
                and L.encode(L.SEALED if c["role"] == "phone" else L.SEALED | L.RESPONSE, 0, s.seal(b"")).hex()
                == c["frame"])
    return False


def run(path):
    passed = failed = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line in ("[", "]", ""):
                continue
            c = json.loads(line[:-1] if line.endswith(",") else line)
            if check(c):
                passed += 1
            else:
                failed += 1
                print("FAIL", c["kind"])
    print("%d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    sys.exit(1 if run(sys.argv[1]) else 0)
