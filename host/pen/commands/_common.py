"""What the command modules share: the home folder, the CTB, keys, refs and
record files."""
import os
import time
from pathlib import Path

from pen_protocol import cbor, ctb, records as R
from pen.cli import PenError
from pen.keys import Keyring
from pen.store import SQLiteCTB, BatchRejected

BUNDLE_TAG = "pen-records/1"


def home(args):
    h = getattr(args, "home", None) or os.environ.get("PEN_HOME") or str(Path.home() / ".pen")
    return Path(h)


def open_ctb(args):
    url = getattr(args, "db", None) or os.environ.get("PEN_DB")
    if url and url.startswith(("postgres://", "postgresql://")):
        from pen.pgstore import PostgresCTB
        return PostgresCTB(url)
    return SQLiteCTB(url or (home(args) / "ctb.sqlite"))


def keyring(args):
    return Keyring(home(args))


def load_key(args, name):
    try:
        return keyring(args).load(name)
    except (KeyError, ValueError) as e:
        raise PenError(str(e).strip('"'))


def submit(store, recs):
    """Store records as one batch; a rejection is one clear line and nothing stored."""
    try:
        verdicts = store.submit([r.raw if isinstance(r, R.Record) else r for r in recs])
    except BatchRejected as e:
        v = e.verdict
        what = v.record.name if v.record is not None else "record"
        raise PenError("%s rejected: %s%s (nothing stored)" % (what, v.reason, ": " + v.detail if v.detail else ""))
    return verdicts


def parse_ref(text, what="ref"):
    """A ref is 16 hex digits (kid || serial) or KIDHEX:SERIAL."""
    try:
        if ":" in text:
            k, s = text.split(":", 1)
            kid = bytes.fromhex(k)
            if len(kid) != 4:
                raise ValueError
            return R.make_ref(kid, int(s))
        b = bytes.fromhex(text)
        if len(b) != 8:
            raise ValueError
        return b
    except (ValueError, R.RecordError):
        raise PenError("bad %s %r: expected 16 hex digits or KID:SERIAL" % (what, text))


def fmt_ref(ref):
    return "%s:%d" % (ref[:4].hex(), R.ref_serial(ref))


def resolve_kid(args, store, text):
    """A council named by local key name, 8-hex kid, or council name."""
    kr = keyring(args)
    try:
        if kr.path(text).exists():
            return load_key(args, text).kid
    except ValueError:
        pass
    try:
        b = bytes.fromhex(text)
        if len(b) == 4:
            return b
    except ValueError:
        pass
    for k, c in store.state_prefix(b"C"):
        if ctb.council_name(c) == text:
            return k[1:]
    raise PenError("unknown council %r (a key name, an 8-hex kid or a council name)" % text)


def fresh_serial(store, kid, prefix):
    """A serial unused by this key for refs under prefix (T, V, P, U)."""
    while True:
        n = store.next_serial(kid, prefix.decode())
        if store.get(prefix + R.make_ref(kid, n)) is None:
            return n


def write_bundle(path, raws):
    data = cbor.dumps([BUNDLE_TAG, [bytes(r) for r in raws]])
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_bundle(path):
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PenError("cannot read %s: %s" % (path, e.strerror))
    try:
        obj = cbor.loads(data)
    except cbor.CBORError as e:
        raise PenError("%s is not a Pen record file: %s" % (path, e))
    if not (isinstance(obj, list) and len(obj) == 2 and obj[0] == BUNDLE_TAG and isinstance(obj[1], list)
            and all(isinstance(x, bytes) for x in obj[1])):
        raise PenError("%s is not a Pen record file (expected %s)" % (path, BUNDLE_TAG))
    return obj[1]


def parse_time(text):
    """Unix seconds, or an ISO date/time (UTC)."""
    if text is None:
        return int(time.time())
    try:
        return int(text)
    except ValueError:
        pass
    from datetime import datetime, timezone
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise PenError("bad time %r: use unix seconds or ISO 8601" % text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def admitted_councils(store):
    return [k[1:] for k, c in store.state_prefix(b"C") if ctb.council_status(c) == ctb.ADMITTED]
