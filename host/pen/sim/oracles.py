"""Oracles and bounds: what no real protocol can beat, as code anyone can rerun.

An oracle changes what the medium tells Pen's nodes, never Pen's code: it
answers channel activity detection (CAD) for them with knowledge no radio
has (perfect synchronisation, a busy signal nobody sends). Run with
`pen sim --oracle busy-tone|tdma`; it applies to Pen's runs only, the
baseline runs as usual. `pen sim --bound` prints the first-principles
duty-cycle and channel bounds (bounds() below).

- busy-tone: every node that hears a bridge finds the channel busy while
  any frame addressed to that bridge is on air, as if the bridge sent a busy
  tone: the hidden terminals at the bridge vanish.
- tdma: every node that hears a bridge and is heard by it (and the bridge)
  owns one slot of a fixed cycle and may start anything but an ack only in
  its slot (its CAD reports busy elsewhere); the other nodes keep
  listen-before-talk. Slots are perfectly synchronised and cost no frames.
"""
from pen_protocol import frame as F

TDMA_SLOT_US = 1200000  # one payment bundle (~0.95 s at SF9) and its ack
PAYMENT_RECORD_BYTES = 89  # a signed USE record (pen.sim.engine.Payments)
ACK_BYTES = F.HEADER_LEN + F.FRAME_ID_LEN  # a link ack naming one frame


class BusyTone:
    name = "busy-tone"

    def attach(self, run):
        t = run.t
        self.bridges = set(b + 1 for b in t.bridges)  # node addresses are index + 1
        self.hear = set(j for b in t.bridges for j in range(t.n) if j != b and t.link_ok(b, j))

    def busy(self, medium, j, now_us):
        if j not in self.hear:
            return False
        for o in medium.on_air:
            f = o[3]
            if o[0] <= now_us < o[1] and o[2] != j and len(f) >= F.HEADER_LEN and \
                    ((f[4] << 8) | f[5]) in self.bridges:
                return True
        return False


class Tdma:
    name = "tdma"

    def __init__(self, slot_us=TDMA_SLOT_US):
        self.slot_us = slot_us

    def attach(self, run):
        t = run.t
        owners = set(t.bridges)
        for b in t.bridges:
            owners.update(j for j in range(t.n) if t.link_ok(b, j) and t.link_ok(j, b))
        self.slot = dict((j, k) for k, j in enumerate(sorted(owners)))
        self.cycle_us = len(self.slot) * self.slot_us

    def busy(self, medium, j, now_us):
        k = self.slot.get(j)
        return k is not None and (now_us % self.cycle_us) // self.slot_us != k


ORACLES = {"busy-tone": BusyTone, "tdma": Tdma}


def make(name):
    if name is None:
        return None
    if name not in ORACLES:
        raise ValueError("unknown oracle %r (one of %s)" % (name, ", ".join(sorted(ORACLES))))
    return ORACLES[name]()


def bounds(preset):
    """First-principles caps on payments per hour into one bridge, from
    airtime alone (no collisions, no routing, every payment heard once):
    - one ack per payment: the bridge sends one ack frame per payment, and
      its own duty cycle caps those: 3600 s x duty / ack airtime;
    - the channel: every payment frame and its ack on the bridge's air, one
      at a time: 3600 s / (payment frame + ack airtime); acks batched into
      fewer frames lift the first cap towards this one."""
    pay_frame = PAYMENT_RECORD_BYTES + F.HEADER_LEN - 1  # the type byte rides in the header
    t_pay = preset.airtime_us(pay_frame) / 1e6
    t_ack = preset.airtime_us(ACK_BYTES) / 1e6
    duty = preset.duty_permille / 1000.0
    out = {"preset": preset.name, "payment_frame_bytes": pay_frame, "payment_airtime_s": round(t_pay, 4),
           "ack_frame_bytes": ACK_BYTES, "ack_airtime_s": round(t_ack, 4), "bridge_duty": duty,
           "channel_cap_per_hour": int(3600 / (t_pay + t_ack))}
    out["one_ack_per_payment_duty_cap_per_hour"] = int(3600 * duty / t_ack) if duty else None
    out.update(scheduled_bounds(preset))
    return out


def scheduled_bounds(preset):
    """The scheduled last hop's own caps (firmware/pen_node/lasthop.py, its
    constants; sealed frames, tag included): a full grant acks at most a
    cycle's slot units, one payment each (a two-payment bundle takes two
    units), so the bridge's duty cycle spent on acks is one grant per
    MAX_GRANT_UNITS payments; and a cycle that is all slots (grant, guard,
    MAX_GRANT_UNITS units, the contention window) carries at most
    MAX_GRANT_UNITS payments."""
    from pen_node import lasthop as L
    unit_s = preset.airtime_us(F.HEADER_LEN + 1 + F.BUNDLE_ENTRY + PAYMENT_RECORD_BYTES + F.TAG_LEN) / 1e6 + \
        L.GUARD_MS / 1000.0
    grant_bytes = F.HEADER_LEN + L._GRANT_MAX_PAYLOAD + F.TAG_LEN
    t_grant = preset.airtime_us(grant_bytes) / 1e6
    cycle_s = t_grant + L.GUARD_MS / 1000.0 + L.MAX_GRANT_UNITS * unit_s + L.CW_MS / 1000.0
    duty = preset.duty_permille / 1000.0
    return {"grant_bytes": grant_bytes, "grant_airtime_s": round(t_grant, 4), "slot_unit_s": round(unit_s, 4),
            "cycle_s": round(cycle_s, 3),
            "batched_ack_duty_cap_per_hour": int(3600 * duty * L.MAX_GRANT_UNITS / t_grant) if duty else None,
            "scheduled_cycle_cap_per_hour": int(3600 * L.MAX_GRANT_UNITS / cycle_s)}
