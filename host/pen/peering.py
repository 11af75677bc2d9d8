"""The contract between CTB nodes, bridges and tools, in one place and with
no dependency on any of them: the node (server), its client, peer sync and
the bridge's uploader all import it, and it imports none of them.

- the errors every side speaks: NodeError (a refusal, with a reason code
  and an HTTP status) and PeerUnavailable (no answer: keep everything, try
  later);
- the HTTP constants: the media type, the header names;
- the signed request (docs/node.md, "Who may do what"): a peer signs every
  request with its Ed25519 key over REQUEST_DOMAIN + method, the Host it
  addressed, path and query, its clock's time, a fresh nonce and the body's
  SHA-256. The node checks the key is on its allow-list, the time within
  REPLAY_WINDOW_S of its own clock, the signature, and that the nonce was
  not seen in the window; any change to a signed part breaks the signature.

The peer contract a bridge uploads through (pen.bridge.peers): submit(raws)
-> {"ok": True, "verdicts": [{"code", "reason"}...], "receipts": [raw...]} or
{"ok": False, "index": i, "reason": code, "detail": text}; raises
PeerUnavailable when the peer cannot be reached; receipts([(token ref,
use id)]) -> [raw ACCOUNTED...] the receipts the peer holds for those uses
(for an upload whose answer was lost), at most MAX_RECEIPT_ASKS a request.
"""
import hashlib
import os

from pen_protocol import ctb, records as R

CBOR = "application/cbor"
SESSION_HEADER = "Pen-Sync-Session"
# the signed-request headers
KEY_HEADER = "Pen-Key"  # the peer's public key, 64 hex digits
TIME_HEADER = "Pen-Time"  # the peer's clock, whole seconds since the epoch
NONCE_HEADER = "Pen-Nonce"  # 32 hex digits, fresh for every request
SIG_HEADER = "Pen-Signature"  # 128 hex digits: Ed25519 over request_message()

# Domain separation: no record signature (pen/1/<TYPE>\0) and nothing outside
# Pen can be replayed as a request, nor a request as anything else.
REQUEST_DOMAIN = b"pen/1/node-request\x00"
# How far a request's time may be from the node's clock, either way: long
# enough for clocks a few tens of seconds apart and a slow upload, short
# enough that the node remembers every nonce of the window (at most a peer's
# rate limit times this many seconds of them).
REPLAY_WINDOW_S = 120
NONCE_BYTES = 16
# (token ref, use id) pairs one receipts request may ask about: a bridge
# asks about at most one batch (500) at once.
MAX_RECEIPT_ASKS = 500


class NodeError(Exception):
    """A request the node refuses: .reason is a short code, .status the HTTP status."""

    def __init__(self, reason, detail="", status=400):
        Exception.__init__(self, reason + (": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail
        self.status = status


class PeerUnavailable(Exception):
    """No answer from the peer (no internet): keep everything, try later."""


def request_message(method, host, path, when, nonce, body):
    """The exact bytes a request signature covers. Each part is fixed-size
    or ends at a NUL it cannot contain (HTTP method, host and path hold no
    NUL), so no two requests share a message."""
    for part in (method, host, path):
        if "\x00" in part:
            raise ValueError("a NUL in a signed request part")
    return b"".join([REQUEST_DOMAIN, method.upper().encode(), b"\x00", host.lower().encode(), b"\x00",
                     path.encode(), b"\x00", b"%d" % int(when), b"\x00", bytes(nonce),
                     hashlib.sha256(bytes(body or b"")).digest()])


def sign_request(signer, method, host, path, body, when, nonce=None):
    """The headers that authenticate one request. signer: pen.keys.Signer
    (its public_key and a call that signs bytes); when: the caller's clock;
    nonce: fresh random bytes (tests pass their own)."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    sig = signer(request_message(method, host, path, when, nonce, body))
    return {KEY_HEADER: signer.public_key.hex(), TIME_HEADER: "%d" % int(when),
            NONCE_HEADER: bytes(nonce).hex(), SIG_HEADER: bytes(sig).hex()}


def refusal(rejected):
    """The peer contract's answer to a refused batch, from a store's
    BatchRejected: the first refused record (index, reason, detail) and,
    in "rejected", every refused record's [index, reason], so the sender
    sets them all aside in one round trip (a batch with k bad records costs
    two validations of it, not k)."""
    out = {"ok": False, "index": rejected.index, "reason": rejected.verdict.reason,
           "detail": rejected.verdict.detail}
    if getattr(rejected, "verdicts", None) is not None:
        out["rejected"] = [[i, v.reason] for i, v in enumerate(rejected.verdicts) if v.code == ctb.REJECTED]
    return out


def refused_records(res):
    """[(index, reason)] of a refused batch: all of them when the peer said,
    else the first (an older peer)."""
    if res.get("rejected"):
        return [(int(i), r) for i, r in res["rejected"]]
    return [(res["index"], res["reason"])]


def receipts_in(history, use_id):
    """The ACCOUNTED receipts for use_id among a token's records (raw)."""
    out = []
    for raw in history:
        if raw[0] == R.ACCOUNTED:
            rec = R.parse(raw)
            if rec.fields[1] == use_id:
                out.append(rec.raw)
    return out
