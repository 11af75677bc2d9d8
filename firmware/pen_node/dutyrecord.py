"""The duty-cycle budget across reboots. A module of its own, not part of
duty.py: only a board's main loads it, and a node under a 64 KB heap has no
room for code it does not run."""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from .journal import _crc, _u32, _be32

_SLOT = const(12)  # sequence 4 | airtime us 4 | crc32 of the 8 before 4
RECORD_BYTES = const(24)  # two slots, written in turn: a torn write leaves the other
_SAVE_MS = const(60000)


class DutyRecord:
    """The airtime spent over the last hour, kept across reboots, so a node
    that reboots (a power cut, a watchdog, a volunteer re-flashing it) does
    not get a fresh budget and break the law.

    A board has no clock that survives a power cut, so after a reboot the
    node cannot tell when that airtime was spent: all of it counts as spent
    at boot. That errs on the side of the law (it frees an hour after boot,
    not sooner). Saved when the unsaved spending reaches a hundredth of the
    budget, or a minute after any: a node rebooting in a loop overspends at
    most that much per reboot, and the flash sees at most a few small writes
    a minute. storage: read(off, n), write(off, data), sync() over
    RECORD_BYTES (journal.FileStorage on a board, MemStorage in tests)."""

    def __init__(self, storage):
        self.st = storage
        self.seq = 0
        self.saved = 0
        self.saved_ms = 0

    def restore(self, duty, now_ms):
        """At boot: charge the saved airtime to duty now. A record that
        exists but cannot be read (both slots torn) charges the whole budget."""
        best = None
        blank = True
        for i in range(2):
            s = self.st.read(i * _SLOT, _SLOT)
            if len(s) == _SLOT and s != b"\xff" * _SLOT and s != bytes(_SLOT):
                blank = False
                if _crc(s[:8]) == _u32(s, 8) and (best is None or _u32(s, 0) > best[0]):
                    best = (_u32(s, 0), _u32(s, 4))
        if best is not None:
            self.seq, used = best
        else:
            used = 0 if blank else duty.budget_us()
        if used:
            duty.spend(used, now_ms)
        self.saved = used
        self.saved_ms = now_ms
        return used

    def maybe_save(self, duty, now_ms):
        """After a transmission: save if enough is unsaved. True if it wrote."""
        if not duty.duty_permille:
            return False  # no budget to keep (US915: dwell time only)
        used = duty.used_us(now_ms)
        if used == self.saved or (used - self.saved < duty.budget_us() // 100 and
                                  now_ms - self.saved_ms < _SAVE_MS):
            return False
        self.seq += 1
        body = _be32(self.seq) + _be32(used)
        self.st.write((self.seq & 1) * _SLOT, body + _be32(_crc(body)))
        self.st.sync()
        self.saved = used
        self.saved_ms = now_ms
        return True
