"""NodeClient: a blocking HTTP client for a CTB node (urllib, no extra
dependency). Used by peer sync, by `pen node status --url`, and by a bridge
(its submit() is the bridge's peer contract, pen.bridge.peers)."""
import json
import time
import urllib.error
import urllib.parse
import urllib.request

from pen.peering import CBOR, SESSION_HEADER, NodeError, PeerUnavailable, sign_request
from pen_protocol import cbor

# The largest reply read from a peer: a sync message (8 MiB) or a fetch of
# MAX_FETCH_IDS records of MAX_RECORD bytes (6 MB), with room for framing.
# A peer cannot make this client buffer more.
MAX_REPLY = (8 << 20) + 4096
# A rate-limited request waits 0.25 s, then twice as long each time: 8 tries
# span ~32 s, enough for a peer's bucket (pen.node.auth) to refill.
RATE_LIMIT_TRIES = 8
RATE_LIMIT_FIRST_WAIT_S = 0.25


class NodeClient:
    """signer: this side's key (pen.keys.Signer); every request is then
    signed (pen.peering) with the time clock() gives. Without one the
    client is anonymous and may only read what the node publishes."""

    def __init__(self, url, timeout_s=60.0, signer=None, clock=time.time, sleep=time.sleep):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.signer = signer
        self.clock = clock
        self.sleep = sleep  # waits between tries of a rate-limited request
        self._host = urllib.parse.urlsplit(self.url).netloc
        self._base = urllib.parse.urlsplit(self.url).path
        self.sent_bytes = 0
        self.received_bytes = 0
        self.requests = 0

    def _request(self, method, path, body=None, headers=None):
        """(status, headers, body); 4xx/5xx with a JSON reason raise NodeError
        except 422 (a rejected batch, returned). No answer: PeerUnavailable.
        A rate-limited request is sent again (newly signed) after a wait
        that doubles, RATE_LIMIT_TRIES times in all."""
        wait = RATE_LIMIT_FIRST_WAIT_S
        for attempt in range(RATE_LIMIT_TRIES):
            try:
                return self._once(method, path, body, headers)
            except NodeError as e:
                if e.reason != "rate-limited" or attempt == RATE_LIMIT_TRIES - 1:
                    raise
            self.sleep(wait)
            wait *= 2

    def _once(self, method, path, body=None, headers=None):
        h = {"Content-Type": CBOR} if body is not None else {}
        self.requests += 1
        h.update(headers or {})
        if self.signer is not None:
            h.update(sign_request(self.signer, method, self._host, self._base + path, body, self.clock()))
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=h)
        self.sent_bytes += len(body or b"")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = resp.read(MAX_REPLY + 1)
                self.received_bytes += len(data)
                if len(data) > MAX_REPLY:
                    raise NodeError("reply-too-large", "%s sent more than %d bytes" % (self.url, MAX_REPLY))
                return resp.status, resp.headers, data
        except urllib.error.HTTPError as e:
            data = e.read(MAX_REPLY)
            self.received_bytes += len(data)
            if e.code == 422:
                return e.code, e.headers, data
            try:
                info = json.loads(data)
                raise NodeError(info.get("reason", "http-%d" % e.code), info.get("detail", ""), e.code)
            except ValueError:
                raise NodeError("http-%d" % e.code, data[:200].decode("utf-8", "replace"), e.code)
        except (urllib.error.URLError, OSError) as e:
            raise PeerUnavailable("%s: %s" % (self.url, getattr(e, "reason", e)))

    def _json(self, path):
        return json.loads(self._request("GET", path)[2])

    # -- records ----------------------------------------------------------

    def submit(self, raws):
        """{"ok": True, "verdicts", "receipts": [raw...]} or {"ok": False,
        "index", "reason", "detail"} (nothing stored)."""
        status, _, data = self._request("POST", "/v1/records", cbor.dumps([bytes(r) for r in raws]))
        res = json.loads(data)
        if res.get("ok"):
            res["receipts"] = [bytes.fromhex(r) for r in res.get("receipts", [])]
        return res

    def fetch(self, ids):
        data = self._request("POST", "/v1/records/fetch", cbor.dumps(list(ids)))[2]
        raws = cbor.loads(data)
        if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
            raise NodeError("malformed", "fetch reply is not an array of records")
        return raws

    def receipts(self, uses):
        """ACCOUNTED receipts the node holds for [(token ref, use id)]."""
        data = self._request("POST", "/v1/receipts", cbor.dumps([[bytes(r), bytes(u)] for r, u in uses]))[2]
        raws = cbor.loads(data)
        if not isinstance(raws, list) or not all(isinstance(r, bytes) for r in raws):
            raise NodeError("malformed", "receipts reply is not an array of records")
        return raws

    def record(self, rid):
        return self._request("GET", "/v1/records/" + rid.hex())[2]

    # -- sync -------------------------------------------------------------

    def sync(self, msg, session=None):
        """One reconciliation message; returns (reply, session or None)."""
        path = "/v1/sync" + ("/" + session if session else "")
        _, headers, data = self._request("POST", path, msg)
        return data, headers.get(SESSION_HEADER)

    # -- views ------------------------------------------------------------

    def status(self):
        return self._json("/v1/status")

    def token(self, ref):
        return self._json("/v1/tokens/" + ref.hex())

    def votations(self):
        return self._json("/v1/votations")

    def votation(self, ref):
        return self._json("/v1/votations/" + ref.hex())

    def publications(self, kind=None):
        return self._json("/v1/publications" + ("?kind=" + kind if kind else ""))

    def accounts(self, prefix=""):
        return self._json("/v1/accounts" + ("?prefix=" + prefix if prefix else ""))

    def account(self, digits):
        return self._json("/v1/accounts/" + digits)
