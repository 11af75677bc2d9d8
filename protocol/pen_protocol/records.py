"""Every signed record of the seed, and its exact bytes.

    record = type (1 byte) || body (canonical CBOR array) || signature (64 bytes)

The signature covers sign.domain(NAME[type]) || body: the body bytes exactly as
received, never re-encoded. A record's id is the first 16 bytes of SHA-256
over type || body, so a re-signed copy of the same content is the same record.
The body's fields are positional (arrays cost no key bytes on air); SCHEMA
lists them, and docs/protocol.md gives each its CDDL.

References on air are short: a council is named by its 4-byte key id (kid);
a token, votation, proposal or publication by an 8-byte ref = issuer's kid ||
big-endian u32 serial chosen by the issuer.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x


from . import cbor, ids, sign

# the type numbers, the id and the token ref have one definition, shared
# with the firmware, the bridge and the simulator (identity.py)
from .identity import (SIG_LEN, ID_LEN, REF_LEN, COUNCIL, GENESIS, MEMBER, PROPOSAL, VOTATION_OPEN, VOTE,  # noqa: F401
                       VOTATION_CLOSE, ISSUE, SET_USER, USE, ACCOUNTED, PUBLICATION, CONFLICT, TOKEN_TYPES,
                       record_id)

# Largest record accepted: a votation close listing 100 votes is ~1.7 KB;
# 16 LoRa fragments carry 3.7 KB. Bounded so no peer can make us buffer more.
MAX_RECORD = const(3072)
MAX_TEXT = const(64)
MAX_LIST = const(128)

NAMES = {
    GENESIS: "genesis", COUNCIL: "council", MEMBER: "member",
    VOTATION_OPEN: "votation-open", VOTE: "vote", VOTATION_CLOSE: "votation-close",
    PROPOSAL: "proposal", ISSUE: "issue", SET_USER: "set-user", USE: "use",
    ACCOUNTED: "accounted", PUBLICATION: "publication", CONFLICT: "conflict",
}

# council kinds
CONSUMPTION = const(0)
PRODUCTION = const(1)
SUPPORTERS = const(2)
FEDERATION = const(3)
KINDS = ("consumption", "production", "supporters", "federation")

# membership roles
ROLE_MEMBER = const(0)
ROLE_PROPOSER = const(1)
ROLE_NODE = const(2)  # may sign ACCOUNTED receipts for its council's CTB node
ROLE_REGISTER = const(3)  # a store register
ROLES = ("member", "proposer", "node", "register")

# votation subjects
ADMIT = const(0)
DISMEMBER = const(1)
APPROVE = const(2)
EXCHANGE = const(3)
OTHER = const(4)
SUBJECTS = ("admit", "dismember", "approve", "exchange", "other")

# vote choices
NO = const(0)
YES = const(1)
ABSTAIN = const(2)
CHOICES = ("no", "yes", "abstain")

# token kinds
NORMAL = const(0)
CHANGE = const(1)

# publication kinds
PUB_KINDS = ("price", "limit", "product", "council", "accounts", "year-end")  # pen_protocol/publication.py

# field kinds
F_U = const(0)  # unsigned int
F_T = const(1)  # text <= MAX_TEXT bytes
F_K = const(2)  # kid: bstr 4
F_R = const(3)  # ref: bstr 8
F_ID = const(4)  # record id: bstr 16
F_PK = const(5)  # public key: bstr 32
F_P = const(6)  # product id / account: packed BCD
F_KIDS = const(7)  # array of distinct kids, 1..MAX_LIST
F_OK = const(8)  # null or kid
F_ANY = const(9)  # any value; its meaning is checked by ctb per subject
F_LINES = const(10)  # proposal lines: array 1..MAX_LIST of [product, quantity, credits]
F_IDS = const(11)  # array of record ids, 0..MAX_LIST, strictly ascending
F_MAP = const(12)  # map with int keys
F_B = const(13)  # any byte string <= MAX_RECORD (conflict evidence)
F_SIGS = const(14)  # array of 64-byte signatures, 1..MAX_FOUNDERS

# Genesis carries one consent signature per founder (64 B each): 40 founders
# keep it under MAX_RECORD with room for names and kids.
MAX_FOUNDERS = const(40)

SCHEMA = {
    GENESIS: (("name", F_T), ("founders", F_KIDS), ("time", F_U), ("consents", F_SIGS)),
    COUNCIL: (("key", F_PK), ("name", F_T), ("kind", F_U), ("parent", F_OK)),
    MEMBER: (("council", F_K), ("key", F_PK), ("role", F_U)),
    VOTATION_OPEN: (("votation", F_R), ("subject", F_U), ("about", F_ANY), ("electorate", F_KIDS), ("deadline", F_U),
                    ("epoch", F_U)),
    VOTE: (("voter", F_K), ("votation", F_R), ("choice", F_U)),
    VOTATION_CLOSE: (("votation", F_R), ("open", F_ID), ("yes", F_U), ("no", F_U), ("abstain", F_U),
                     ("votes", F_IDS), ("time", F_U)),
    PROPOSAL: (("proposal", F_R), ("year", F_U), ("lines", F_LINES)),
    ISSUE: (("token", F_R), ("value", F_U), ("authority", F_R), ("kind", F_U)),
    SET_USER: (("token", F_R), ("user", F_PK)),
    USE: (("token", F_R), ("product", F_P), ("account", F_P)),
    ACCOUNTED: (("token", F_R), ("use", F_ID), ("node", F_K), ("time", F_U)),
    PUBLICATION: (("publication", F_R), ("kind", F_U), ("subject", F_ANY), ("content", F_MAP)),
    CONFLICT: (("first", F_B), ("second", F_B)),
}

_ENUM_MAX = {  # (type, field index) -> largest allowed value
    (COUNCIL, 2): 3, (MEMBER, 2): 3, (VOTATION_OPEN, 1): 4, (VOTE, 2): 2,
    (ISSUE, 3): 1, (PUBLICATION, 1): 5,
}


class RecordError(ValueError):
    """A record that is not well formed; .reason is a short code."""

    def __init__(self, reason, detail=""):
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail


class Record:
    """A parsed record. raw is the exact bytes; body the exact body bytes the
    signature covers; fields the decoded positional fields."""

    __slots__ = ("raw", "type", "body", "fields", "sig", "id", "token_ref")

    def __init__(self, raw, rtype, body, fields, sig):
        self.raw = raw
        self.type = rtype
        self.body = body
        self.fields = fields
        self.sig = sig
        self.id = record_id(raw)
        # the token a token record is about (its first field), else None:
        # a CTB node asks it of every record several times
        self.token_ref = fields[0] if rtype in TOKEN_TYPES else None

    @property
    def name(self):
        return NAMES[self.type]

    def get(self, field):
        names = SCHEMA[self.type]
        for i in range(len(names)):
            if names[i][0] == field:
                return self.fields[i]
        raise KeyError(field)

    def signed_message(self):
        return sign.domain(NAMES[self.type].encode()) + self.body

    def __repr__(self):
        return "<%s %s>" % (NAMES[self.type], self.id.hex())


def _is_bytes(x, n=None):
    return isinstance(x, bytes) and (n is None or len(x) == n)


def _check_field(rtype, i, kind, v):
    """Raises RecordError when v is not of the field's kind."""
    ok = True
    if kind == F_U:
        ok = isinstance(v, int) and v is not True and v is not False and v >= 0
        if ok and (rtype, i) in _ENUM_MAX:
            ok = v <= _ENUM_MAX[(rtype, i)]
    elif kind == F_T:
        ok = isinstance(v, str) and 0 < len(v.encode()) <= MAX_TEXT
    elif kind == F_K:
        ok = _is_bytes(v, sign.KID_LEN)
    elif kind == F_R:
        ok = _is_bytes(v, REF_LEN)
    elif kind == F_ID:
        ok = _is_bytes(v, ID_LEN)
    elif kind == F_PK:
        ok = _is_bytes(v, 32)
    elif kind == F_P:
        ok = _is_bytes(v) and ids.is_valid(v)
    elif kind == F_OK:
        ok = v is None or _is_bytes(v, sign.KID_LEN)
    elif kind == F_KIDS:
        ok = isinstance(v, list) and 0 < len(v) <= MAX_LIST
        if ok:
            seen = {}
            for k in v:
                if not _is_bytes(k, sign.KID_LEN) or k in seen:
                    ok = False
                    break
                seen[k] = 1
    elif kind == F_LINES:
        ok = isinstance(v, list) and 0 < len(v) <= MAX_LIST
        if ok:
            for line in v:
                if not (isinstance(line, list) and len(line) == 3 and _is_bytes(line[0]) and ids.is_valid(line[0])
                        and _uint(line[1]) and _uint(line[2])):
                    ok = False
                    break
    elif kind == F_IDS:
        ok = isinstance(v, list) and len(v) <= MAX_LIST
        if ok:
            prev = b""
            for x in v:
                if not _is_bytes(x, ID_LEN) or x <= prev:
                    ok = False
                    break
                prev = x
    elif kind == F_MAP:
        ok = isinstance(v, dict)
    elif kind == F_B:
        ok = _is_bytes(v) and 0 < len(v) <= MAX_RECORD
    elif kind == F_SIGS:
        ok = isinstance(v, list) and 0 < len(v) <= MAX_FOUNDERS
        if ok:
            for x in v:
                if not _is_bytes(x, SIG_LEN):
                    ok = False
                    break
    if not ok:
        raise RecordError("bad-field", "%s.%s" % (NAMES[rtype], SCHEMA[rtype][i][0]))


def _uint(x):
    return isinstance(x, int) and x is not True and x is not False and x >= 0


# Each field kind's fixed byte length (refs, keys, ids: a CTB node's every
# payment carries them), -1 for the others, by kind number: parse checks
# those and plain uints in its own loop and hands the rest to _check_field,
# which says the same of them. (A table of 15 small ints, not a plan per
# type: MicroPython's 64 KB heap tests hold records.py too.)
_FIXED = (-1, -1, sign.KID_LEN, REF_LEN, ID_LEN, 32, -1, -1, -1, -1, -1, -1, -1, -1, -1)


def _check_fields(rtype, schema, fields):
    for i in range(len(schema)):
        kind = schema[i][1]
        v = fields[i]
        n = _FIXED[kind]
        if n >= 0:  # decoded byte strings are exactly bytes
            if type(v) is bytes and len(v) == n:
                continue
        elif kind == F_U and type(v) is int and v >= 0 and (rtype, i) not in _ENUM_MAX:  # not bool: its own type
            continue
        _check_field(rtype, i, kind, v)


def parse(raw):
    """Parse record bytes; raises RecordError with a reason code:
    empty, too-long, unknown-type, malformed (CBOR), not-array, field-count,
    bad-field, bad-length (signature missing or trailing bytes)."""
    raw = bytes(raw)
    if not raw:
        raise RecordError("empty")
    if len(raw) > MAX_RECORD:
        raise RecordError("too-long")
    rtype = raw[0]
    schema = SCHEMA.get(rtype)
    if schema is None:
        raise RecordError("unknown-type", str(rtype))
    try:
        fields, end = cbor.decode_prefix(raw, 1)
    except cbor.CBORError as e:
        raise RecordError("malformed", str(e))
    if type(fields) is not list:
        raise RecordError("not-array")
    if len(fields) != len(schema):
        raise RecordError("field-count", "%s has %d fields" % (NAMES[rtype], len(schema)))
    _check_fields(rtype, schema, fields)
    siglen = 0 if rtype == CONFLICT else SIG_LEN
    if len(raw) != end + siglen:
        raise RecordError("bad-length", "signature missing or trailing bytes")
    return Record(raw, rtype, raw[1:end], fields, raw[end:])


def encode(rtype, fields, signer=None):
    """Build record bytes. signer(message) -> 64-byte signature (None only
    for CONFLICT). The result is parsed back, so encode never produces a
    record that parse would refuse."""
    body = cbor.dumps(list(fields))
    if rtype == CONFLICT:
        raw = bytes((rtype,)) + body
    else:
        sig = signer(sign.domain(NAMES[rtype].encode()) + body)
        raw = bytes((rtype,)) + body + bytes(sig)
    return parse(raw)


def make_ref(kid, serial):
    if not 0 <= serial <= 0xFFFFFFFF:
        raise RecordError("bad-field", "serial must fit 32 bits")
    return bytes(kid) + serial.to_bytes(4, "big")


def ref_kid(ref):
    return ref[:4]


def ref_serial(ref):
    return int.from_bytes(ref[4:8], "big")


def genesis_consent(name, founders, time):
    """The bytes every founder signs to consent to a genesis: the domain
    "genesis-consent" and the CBOR of [name, founders, time]. The consents sit
    in the genesis body, so the first founder's record signature covers them."""
    return sign.domain(b"genesis-consent") + cbor.dumps([name, list(founders), time])


def conflict(a, b):
    """Evidence that two records of one signer cannot both hold: ordered by
    id so every peer builds the same bytes from the same pair."""
    if b.id < a.id:
        a, b = b, a
    return encode(CONFLICT, [a.raw, b.raw])
