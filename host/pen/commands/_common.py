"""What the command modules share: the home folder, the CTB, keys, refs and
record files."""
import os
import sys
import time
from pathlib import Path

from pen_protocol import cbor, ctb, records as R
from pen.cli import PenError
from pen.keys import Keyring
from pen.store import SQLiteCTB, BatchRejected

BUNDLE_TAG = "pen-records/1"
MAX_UINT = 0xFFFFFFFFFFFFFFFF  # the largest integer a record can carry (CBOR's 64-bit unsigned)
_session = {}  # the running command's args (cli.main sets them): refs may name a local key


def begin(args):
    _session.clear()
    _session["args"] = args


def home_path(args):
    h = getattr(args, "home", None) or os.environ.get("PEN_HOME") or str(Path.home() / ".pen")
    return Path(h)


def home(args):
    """The Pen folder; one that does not exist is an error (a mistyped
    --home or PEN_HOME must not silently start an empty CTB): `pen init`
    creates it."""
    h = home_path(args)
    if not h.is_dir():
        raise PenError("there is no Pen folder at %s; create it with: pen%s init" % (
            h, " --home %s" % h if getattr(args, "home", None) else ""))
    return h


def in_range(what, n, unit, limit=MAX_UINT):
    """A count a record will carry: a positive whole number that fits."""
    if not 1 <= n <= limit:
        raise PenError("%s must be a positive number of %s, at most %d (not %d)" % (what, unit, limit, n))
    return n


def open_ctb(args):
    url = getattr(args, "db", None) or os.environ.get("PEN_DB")
    if url and url.startswith(("postgres://", "postgresql://")):
        from pen.pgstore import PostgresCTB
        store = PostgresCTB(url)
    else:
        if url and url != ":memory:" and not Path(url).parent.is_dir():
            raise PenError("there is no folder %s for the CTB database %s" % (Path(url).parent, url))
        store = SQLiteCTB(url or (home(args) / "ctb.sqlite"))
    if store.rebuilt is not None:  # written under other rules: its state was just derived again
        sys.stderr.write("pen: this CTB's state was derived again under this Pen's rules (docs/node.md)%s\n" % (
            "; %d records they refuse were set aside (pen ctb status)" % len(store.rebuilt) if store.rebuilt else ""))
    return store


def keyring(args):
    return Keyring(home(args))


def load_key(args, name):
    kr = keyring(args)
    try:
        if kr.is_sealed(name):  # a credit-book key signs only with its password (docs/economy.md)
            from pen.commands.keys import read_password
            return kr.unseal(name, read_password("password for %s: " % name))
        return kr.load(name)
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
    for key, n in _session.pop("serials", {}).items():
        store.local_set(key, n)
    return verdicts


def parse_ref(text, what="ref"):
    """A ref is 16 hex digits (kid || serial), KIDHEX:SERIAL, or KEY:SERIAL
    with the name of a key in this Pen folder (coop:1: coop's first)."""
    try:
        if ":" in text:
            k, s = text.split(":", 1)
            return R.make_ref(_kid_named(k), int(s))
        b = bytes.fromhex(text)
        if len(b) != 8:
            raise ValueError
        return b
    except (ValueError, R.RecordError):
        raise PenError("bad %s %r: expected KEY:SERIAL, KID:SERIAL or 16 hex digits" % (what, text))


def _kid_named(k):
    args = _session.get("args")
    kid = local_kid(args, k) if args is not None else _hex_kid(k)
    if kid is None:
        raise ValueError(k)
    return kid


def _hex_kid(text):
    try:
        b = bytes.fromhex(text)
    except ValueError:
        return None
    return b if len(b) == 4 else None


def local_kid(args, text):
    """The kid of a key in this Pen folder, or one given as 8 hex digits; else None."""
    kr = Keyring(home_path(args))
    try:
        if kr.path(text).exists():
            return kr.load(text).kid
    except (KeyError, ValueError):
        pass
    return _hex_kid(text)


def fmt_ref(ref):
    return "%s:%d" % (ref[:4].hex(), R.ref_serial(ref))


def resolve_kid(args, store, text):
    """A council named by local key name, 8-hex kid, or council name."""
    home(args)  # a missing Pen folder is said as such, not as an unknown council
    kid = local_kid(args, text)
    if kid is not None:
        return kid
    for k, c in store.state_prefix(b"C"):
        if ctb.council_name(c) == text:
            return k[1:]
    raise PenError("unknown council %r (a key name, an 8-hex kid or a council name)" % text)


def fresh_serial(store, kid, prefix):
    """A serial unused by this key for refs under prefix (T, V, P, U). It is
    only reserved when submit() stores the batch: a refused command leaves
    the counter where it was."""
    key = "serial:%s:%s" % (kid.hex(), prefix.decode())  # store.next_serial's counter
    pending = _session.setdefault("serials", {})  # picked by this command, not yet stored
    n = max(int(store.local_get(key, "0")), pending.get(key, 0)) + 1
    while store.get(prefix + R.make_ref(kid, n)) is not None:
        n += 1
    pending[key] = n
    return n


def write_bundle(path, raws):
    """Write a record file whole or not at all (a temporary file renamed into
    place, removed if anything fails)."""
    path = Path(path)
    if path.is_dir():
        raise PenError("%s is a folder; give the name of a file to write" % path)
    data = cbor.dumps([BUNDLE_TAG, [bytes(r) for r in raws]])
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PenError("cannot write %s: %s" % (path, (e.strerror or str(e)).lower()))


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
