"""Wire form of the reconciliation messages (docs/sync.md has the table).

Every message is one canonical CBOR array (pen_protocol.cbor) whose first
item is the message type; ids, symbols, sketches and bitmaps travel as raw
byte strings inside it. parse() checks the shape (type, arity, item types,
byte-string sizes); the Reconciler checks meaning against its state.
"""
from pen_protocol import cbor

from .errors import SyncError

VERSION = 1

HELLO = 0       # [0, version, n, symbols 0..p-1]        initiator -> responder
ESTIMATE = 1    # [1, n, fingerprint, tow]                responder -> initiator
IDENTICAL = 2   # [2]                                     responder -> initiator, ends
SYMBOLS = 3     # [3, start, symbols]                     initiator -> responder
MORE = 4        # [4, count]                              responder -> initiator
RESULT = 5      # [5, fingerprint, ids initiator lacks, 8-byte prefixes and whole ids of ids responder lacks]
                #                                         responder -> initiator, ends
LIST = 6        # [6, bits, bucket, ids]                  initiator -> responder
LIST_REPLY = 7  # [7, bucket, bitmap, ids]                responder -> initiator
FALLBACK = 8    # [8]                                     responder -> initiator

NAMES = {HELLO: "hello", ESTIMATE: "estimate", IDENTICAL: "identical", SYMBOLS: "symbols",
         MORE: "more", RESULT: "result", LIST: "list", LIST_REPLY: "list-reply", FALLBACK: "fallback"}

# item kinds after the type: "u" unsigned int, "b" byte string
_SHAPES = {
    HELLO: "uub",
    ESTIMATE: "ubb",
    IDENTICAL: "",
    SYMBOLS: "ub",
    MORE: "u",
    RESULT: "bbbb",
    LIST: "uub",
    LIST_REPLY: "ubb",
    FALLBACK: "",
}

# The largest honest messages: a SYMBOLS batch of MAX_SYMBOLS symbols
# (5.2 MB), a RESULT of MAX_SYMBOLS/1.3 ids (3.2 MB), a LIST bucket of at most
# MAX_BUCKET_IDS ids (4 MB, in practice 1 MB); 8 MiB leaves room and still
# bounds what one message can make us buffer and parse.
MAX_MESSAGE_BYTES = 8 << 20


def encode(kind, *items):
    return cbor.dumps([kind] + list(items))


def parse(data):
    """bytes -> (kind, items); SyncError('malformed' | 'too-large') otherwise."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SyncError("malformed", "message must be bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise SyncError("too-large", "message of %d bytes" % len(data))
    try:
        obj = cbor.loads(bytes(data))
    except cbor.CBORError as e:
        raise SyncError("malformed", "not canonical CBOR: %s" % e)
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], int) or obj[0] not in _SHAPES:
        raise SyncError("malformed", "not a sync message")
    kind, items = obj[0], obj[1:]
    shape = _SHAPES[kind]
    if len(items) != len(shape):
        raise SyncError("malformed", "%s takes %d items" % (NAMES[kind], len(shape)))
    for want, item in zip(shape, items):
        ok = isinstance(item, bytes) if want == "b" else (
            isinstance(item, int) and not isinstance(item, bool) and item >= 0)
        if not ok:
            raise SyncError("malformed", "%s: wrong item type" % NAMES[kind])
    return kind, items
