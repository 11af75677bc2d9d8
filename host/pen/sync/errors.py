"""The one error the sync package raises for a bad peer or a bad call."""


class SyncError(ValueError):
    """A reconciliation failure; .reason is a short code, see docs/sync.md:

    malformed        not a well-formed sync message
    too-large        message over MAX_MESSAGE_BYTES
    version          peer speaks another protocol version
    unexpected       message not allowed in this state (or after the end)
    out-of-range     a count, index or size outside its limit
    inconsistent     contents contradict our set or the fingerprints
    limit            the peer asks for more than the limits allow
    failed           the reconciler already failed; make a new one
    """

    def __init__(self, reason, detail=""):
        super().__init__("%s: %s" % (reason, detail) if detail else reason)
        self.reason = reason
        self.detail = detail
