"""Golden vectors for pairing and sealed link frames (protocol/vectors/
linkauth.json), generated with pen_protocol.linkauth and a deterministic
byte stream (linkauth.HashRand), replayed on CPython and under MicroPython by
tests/link/linkauth_vectors_check.py. host/pen/vectors.py writes them."""
from pen_protocol import link as L
from pen_protocol import linkauth as A
from pen_protocol.linkauth import HashRand


def linkauth_vectors():
    out = []
    for i in range(3):
        r = HashRand(b"x25519-%d" % i)
        k, u = r(32), r(32)
        out.append({"kind": "x25519", "k": k.hex(), "u": u.hex(), "out": A.x25519(k, u).hex()})
    for code in ("000000", "123456", "999999"):
        pk = HashRand(code.encode())(32)
        out.append({"kind": "generator", "code": code, "pk": pk.hex(), "nonce": "00" * 16,
                    "g": A.generator(code.encode(), pk, bytes(16)).hex()})
    for code, node_code in (("482913", "482913"), ("482913", "482914")):
        pk = HashRand(b"phone")(32)
        ph = A.Pairing(code, pk, HashRand(b"phone-rand"))
        nd = A.Pairing(node_code, pk, HashRand(b"node-rand"))
        start = ph.start()
        ans = nd.answer(start)
        fin = ph.finish(ans)
        out.append({"kind": "pairing", "code": code, "node_code": node_code, "pk": pk.hex(),
                    "start": start.hex(), "answer": ans.hex(), "finish": fin.hex() if fin else None,
                    "psk": ph.psk.hex() if ph.psk else None})
    psk = HashRand(b"psk")(32)
    for role in (b"phone", b"node"):
        s = A.Session(psk, b"p" * 16, b"n" * 16, role)
        inner = L.encode(L.SUBMIT, 7, b"\x0a" + bytes(80))
        out.append({"kind": "seal", "psk": psk.hex(), "role": role.decode(), "inner": inner.hex(),
                    "sealed": [s.seal(inner).hex() for _ in range(2)],
                    "frame": L.encode(L.SEALED if role == b"phone" else L.SEALED | L.RESPONSE, 0,
                                      s.seal(b"")).hex()})
    return out
