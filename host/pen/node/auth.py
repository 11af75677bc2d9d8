"""Who may do what at a CTB node, without I/O: the allow-list of peer keys,
the signed-request check (pen.peering), the nonce memory that refuses a
replay, and per-peer token buckets. The HTTP server asks Gate for every
request; time is always passed in.

Roles (docs/node.md, "Who may do what"):
    public  anyone, unsigned: publications, account roll-ups, a short status
    bridge  a village's bridge: submit records, read a token (its receipts)
    node    a peer CTB node: everything, sync and whole-CTB reads included

A peer is named in the node's local table (PEER_AUTH_KEY + hex key -> JSON
{"name", "role", "rate", "burst"}), written by `pen node peer add`.
"""
import collections
import json

from pen.peering import (KEY_HEADER, NONCE_BYTES, NONCE_HEADER, REPLAY_WINDOW_S, SIG_HEADER, TIME_HEADER,
                         NodeError, request_message)
from pen_protocol import sign

PUBLIC, BRIDGE, NODE = "public", "bridge", "node"
ROLES = (BRIDGE, NODE)
# what each role may do, the higher including the lower
MAY = {PUBLIC: (PUBLIC,), BRIDGE: (PUBLIC, BRIDGE), NODE: (PUBLIC, BRIDGE, NODE)}

PEER_AUTH_KEY = "peerkey:"  # local bookkeeping: allowed peer key (hex) -> JSON of its settings
# A peer's default bucket, by role: a bridge uploads a batch of 500 every few
# seconds (20 a second with bursts of 100 leaves it idle); a peer node's sync
# is a few requests per 2000 records it lacks, so a new replica of a million
# records makes ~2500 (100 a second with bursts of 500: under a minute).
# Either caps what a stolen key can make the node do; clients wait and retry
# on `rate-limited` (pen.node.client).
DEFAULTS = {BRIDGE: (20.0, 100), NODE: (100.0, 500)}
DEFAULT_RATE, DEFAULT_BURST = DEFAULTS[BRIDGE]
# Anonymous readers share buckets per client address, each smaller.
ANON_RATE = 5.0
ANON_BURST = 20
# Addresses with a bucket kept at once; idle (full) ones are forgotten first.
MAX_ANON_ADDRS = 4096
# Nonces remembered: every signed request of the last 2 x REPLAY_WINDOW_S.
# Peers' rates bound it; this caps it whatever the configuration (then the
# node answers busy rather than forget a nonce still inside the window).
MAX_NONCES = 1 << 20
# The allow-list is read again this often (a `pen node peer add` while the
# node runs takes effect within this many seconds).
RELOAD_S = 5.0


class TokenBucket:
    """rate tokens a second, at most burst held; take() spends one."""

    def __init__(self, rate, burst, now):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = now

    def _refill(self, now):
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, now, cost=1.0):
        self._refill(now)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def full(self, now):
        self._refill(now)
        return self.tokens >= self.burst


class Peer:
    def __init__(self, key, name, role, rate, burst):
        self.key = key
        self.name = name
        self.role = role
        self.rate = rate
        self.burst = burst


def peer_entry(name, role=NODE, rate=None, burst=None):
    """The JSON kept for an allowed peer (after checking each setting);
    rate and burst default by role."""
    if role not in ROLES:
        raise ValueError("a peer's role is one of: " + ", ".join(ROLES))
    rate = DEFAULTS[role][0] if rate is None else rate
    burst = DEFAULTS[role][1] if burst is None else burst
    if not (rate > 0 and burst >= 1):
        raise ValueError("a peer's rate must be above 0 and its burst at least 1")
    return json.dumps({"name": name, "role": role, "rate": float(rate), "burst": int(burst)}, sort_keys=True)


def parse_key(text):
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError("a peer key is an Ed25519 public key: 64 hex digits")
    return key


def load_peers(store):
    """{public key: Peer} from a store's local table."""
    out = {}
    for k, v in store.local_prefix(PEER_AUTH_KEY):
        s = json.loads(v)
        if s is None:  # removed
            continue
        key = bytes.fromhex(k[len(PEER_AUTH_KEY):])
        out[key] = Peer(key, s["name"], s["role"], s["rate"], s["burst"])
    return out


class Gate:
    """check_signed() / check_anonymous() for every request; both return
    the Peer (None for anonymous) or raise NodeError with the refusal."""

    def __init__(self, peers, window_s=REPLAY_WINDOW_S, anon_rate=ANON_RATE, anon_burst=ANON_BURST):
        """peers: a callable returning {key: Peer} (read again every RELOAD_S)."""
        self._source = peers
        self.window_s = window_s
        self.anon_rate = anon_rate
        self.anon_burst = anon_burst
        self.peers = {}
        self._loaded_at = None
        self._buckets = {}  # key -> TokenBucket
        self._anon = {}  # address -> TokenBucket
        self._nonces = set()
        self._expiry = collections.deque()  # (forget after, key + nonce), in arrival order
        self.refused = collections.Counter()  # reason -> count, for status

    def _refuse(self, reason, detail, status):
        self.refused[reason] += 1
        raise NodeError(reason, detail, status)

    def due(self, now):
        """True when the allow-list is to be read again (a server does that
        off its event loop: the read waits for the store's lock)."""
        return self._loaded_at is None or now - self._loaded_at >= RELOAD_S or now < self._loaded_at

    def reload(self, now):
        self.peers = self._source()
        self._loaded_at = now

    def _reload(self, now):
        if self.due(now):
            self.reload(now)

    # -- anonymous ------------------------------------------------------------

    def check_anonymous(self, need, address, now):
        if need != PUBLIC:
            self._refuse("unauthenticated", "this needs a request signed by an allowed peer key", 401)
        b = self._anon.get(address)
        if b is None:
            if len(self._anon) >= MAX_ANON_ADDRS:
                for a in [a for a, x in self._anon.items() if x.full(now)]:
                    del self._anon[a]
            if len(self._anon) >= MAX_ANON_ADDRS:
                self._refuse("busy", "too many anonymous clients", 503)
            b = self._anon[address] = TokenBucket(self.anon_rate, self.anon_burst, now)
        if not b.take(now):
            self._refuse("rate-limited", "anonymous reads are limited to %g a second" % self.anon_rate, 429)
        return None

    # -- signed ---------------------------------------------------------------

    def check_headers(self, need, headers, now):
        """Before the body is read: a well-formed signed request from an
        allowed key, in the time window, with the role the route needs.
        Returns (peer, when, nonce)."""
        try:
            key = bytes.fromhex(headers.get(KEY_HEADER, ""))
            when = int(headers.get(TIME_HEADER, ""), 10)
            nonce = bytes.fromhex(headers.get(NONCE_HEADER, ""))
            sig = bytes.fromhex(headers.get(SIG_HEADER, ""))
        except ValueError:
            key = nonce = sig = b""
        if len(key) != 32 or len(nonce) != NONCE_BYTES or len(sig) != 64:
            self._refuse("bad-auth", "the %s, %s, %s and %s headers are malformed" % (
                KEY_HEADER, TIME_HEADER, NONCE_HEADER, SIG_HEADER), 401)
        self._reload(now)
        peer = self.peers.get(key)
        if peer is None:
            self._refuse("unknown-peer", "key %s is not on this node's peer list" % key.hex()[:16], 403)
        if abs(when - now) > self.window_s:
            self._refuse("stale-request", "request time %d is more than %d s from the node's clock" % (
                when, self.window_s), 401)
        if need not in MAY[peer.role]:
            self._refuse("forbidden", "a %s peer may not do this" % peer.role, 403)
        return peer, when, nonce, sig

    def check_signed(self, need, method, host, path, headers, body, now):
        """The whole check of a signed request; returns its Peer."""
        peer, when, nonce, sig = self.check_headers(need, headers, now)
        return self.check_body(peer, when, nonce, sig, method, host, path, body, now)

    def check_body(self, peer, when, nonce, sig, method, host, path, body, now):
        try:
            msg = request_message(method, host, path, when, nonce, body)
        except ValueError as e:
            self._refuse("bad-auth", str(e), 401)
        if not sign.verify(peer.key, msg, sig):
            self._refuse("bad-signature", "the request signature does not verify", 401)
        self._forget(now)
        tag = peer.key + nonce
        if tag in self._nonces:
            self._refuse("replayed", "this request was seen already", 401)
        if len(self._nonces) >= MAX_NONCES:
            self._refuse("busy", "too many signed requests in the replay window", 503)
        b = self._buckets.get(peer.key)
        if b is None or (b.rate, b.burst) != (peer.rate, peer.burst):
            b = self._buckets[peer.key] = TokenBucket(peer.rate, peer.burst, now)
        if not b.take(now):
            self._refuse("rate-limited", "peer %s is limited to %g requests a second" % (peer.name, peer.rate), 429)
        # remembered until no request of that time can be in the window any more
        self._nonces.add(tag)
        self._expiry.append((now + 2 * self.window_s, tag))
        return peer

    def _forget(self, now):
        while self._expiry and self._expiry[0][0] < now:
            self._nonces.discard(self._expiry.popleft()[1])


def allow_peer(store, key, name, role=NODE, rate=None, burst=None):
    """Put a peer key on a node's allow-list (or change its settings)."""
    entry = peer_entry(name, role, rate, burst)
    store.local_set(PEER_AUTH_KEY + bytes(key).hex(), entry)


def remove_peer(store, key):
    """Take a key off the allow-list; False if it was not on it."""
    k = PEER_AUTH_KEY + bytes(key).hex()
    raw = store.local_get(k)
    if raw is None or json.loads(raw) is None:
        return False
    store.local_set(k, "null")
    return True
