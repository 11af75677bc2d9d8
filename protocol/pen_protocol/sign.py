"""Domain separation and the one verify hook.

A signature covers DOMAIN[type] + body, where body is the record's canonical
CBOR exactly as received. The domain names the record type, so a signature
made for one kind of record can never be replayed as another, nor as anything
outside Pen.

Verification goes through one hook: PyNaCl (libsodium) on the host, the
pure-Python verifier (ed25519.py) where PyNaCl is absent (MicroPython), or any
function set with set_verifier (e.g. a native module on a board).
"""

import hashlib

DOMAIN_PREFIX = b"pen/1/"
KID_LEN = 4


def domain(type_name):
    return DOMAIN_PREFIX + type_name + b"\x00"


def kid(public_key):
    """Short key id used on air: 4 bytes of SHA-256 over the key. The registry
    refuses a second key with the same id, so on a given CTB it is unique."""
    return hashlib.sha256(DOMAIN_PREFIX + b"kid\x00" + bytes(public_key)).digest()[:KID_LEN]


_verifier = None


def _default_verifier():
    try:
        from nacl.bindings import crypto_sign_open
        from nacl.exceptions import BadSignatureError

        def verify(pk, msg, sig):
            # libsodium's crypto_sign_open, as VerifyKey.verify calls it,
            # without building a VerifyKey per record (pen bench ingest)
            try:
                crypto_sign_open(bytes(sig) + bytes(msg), bytes(pk))
                return True
            except (BadSignatureError, ValueError, TypeError):
                return False
            except Exception:  # libsodium errors on malformed keys
                return False
        return verify
    except ImportError:
        from .ed25519 import verify
        return verify


def set_verifier(fn):
    """Install fn(public_key, message, signature) -> bool as the verifier."""
    global _verifier
    _verifier = fn


def verify(public_key, message, signature):
    global _verifier
    if _verifier is None:
        _verifier = _default_verifier()
    if len(public_key) != 32 or len(signature) != 64:
        return False
    return bool(_verifier(public_key, message, signature))
