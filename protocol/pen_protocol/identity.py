"""What names a record, without parsing it: its type numbers, its id and
the token it is about. The one definition of each, shared by records.py (the
validator), the firmware (which never decodes CBOR: records.py and the codec
cost ~25 KB of a node's 64 KB heap), the bridge, the simulator and the host.

    record  = type (1 byte) || body (canonical CBOR array) || signature (64)
    id      = SHA-256(type || body)[:16]   (CONFLICT, unsigned: over it all)
    token   = the first field of ISSUE, SET_USER, USE and ACCOUNTED, a bstr 8

A malformed record has an id too (the same formula over its bytes), so a
node, a bridge and a CTB name the same bytes the same way before anyone has
parsed them.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import hashlib

SIG_LEN = const(64)
ID_LEN = const(16)
REF_LEN = const(8)

COUNCIL = const(1)
GENESIS = const(2)
MEMBER = const(3)
PROPOSAL = const(4)
VOTATION_OPEN = const(5)
VOTE = const(6)
VOTATION_CLOSE = const(7)
ISSUE = const(8)
SET_USER = const(9)
USE = const(10)
ACCOUNTED = const(11)
PUBLICATION = const(12)
CONFLICT = const(13)  # evidence: two records of one signer that cannot both hold; unsigned

# what a store hands to its node for the mesh to carry up to a bridge
UPLINK_TYPES = (VOTE, ISSUE, SET_USER, USE)
VOTE_TYPES = (VOTATION_OPEN, VOTE, VOTATION_CLOSE)
# records whose body starts [token ref, ...]
TOKEN_TYPES = (ISSUE, SET_USER, USE, ACCOUNTED)

_ARRAY = const(0x80)  # CBOR major type 4, length in the low 5 bits
_BSTR8 = const(0x48)  # CBOR major type 2, length 8


def signed_len(raw):
    """How many leading bytes of raw its id (and its signature) covers."""
    n = len(raw)
    if n and raw[0] == CONFLICT:
        return n
    return n - SIG_LEN if n > SIG_LEN else 0


def record_id(raw):
    """The record's id: SHA-256 over type || body, first 16 bytes."""
    return hashlib.sha256(bytes(raw[:signed_len(raw)])).digest()[:ID_LEN]


def token_ref(raw):
    """The 8-byte token ref a token record is about, or None (another type,
    or bytes that do not start like one: array header, bstr 8 header)."""
    if len(raw) < 3 + REF_LEN + SIG_LEN or raw[0] not in TOKEN_TYPES:
        return None
    if raw[1] & 0xE0 != _ARRAY or raw[2] != _BSTR8:
        return None
    return bytes(raw[3:3 + REF_LEN])
