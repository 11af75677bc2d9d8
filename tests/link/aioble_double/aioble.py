# A GATT double with aioble's API (micropython-lib aioble: Service,
# Characteristic, BufferedCharacteristic, register_services, advertise,
# DeviceConnection.exchange_mtu / mtu / is_connected, written(timeout_ms),
# notify(connection, data)), for pen_node.ble under the unix port. A test
# plays the phone through Central: connect(mtu), write(data) as the ATT
# layer would deliver it, and the notifications it got. The double enforces
# what a real stack does: a write or a notification longer than MTU - 3
# bytes raises, a written attribute longer than max_len raises, and
# notifying a disconnected phone raises.
import asyncio

_services = []
_centrals = []  # phones waiting to connect, in order


class GattError(Exception):
    pass


class Service:
    def __init__(self, uuid):
        self.uuid = uuid
        self.characteristics = []


class Characteristic:
    def __init__(self, service, uuid, read=False, write=False, write_no_response=False, notify=False,
                 indicate=False, initial=None, capture=False):
        self.uuid = uuid
        self.write = write or write_no_response
        self.notify_ok = notify
        self.capture = capture
        self.max_len = 20
        self._q = []
        self._ev = asyncio.Event()
        service.characteristics.append(self)

    async def written(self, timeout_ms=None):
        if not self._q:
            self._ev.clear()
            if timeout_ms is None:
                await self._ev.wait()
            else:
                await asyncio.wait_for_ms(self._ev.wait(), timeout_ms)
        conn, data = self._q.pop(0)
        return (conn, data) if self.capture else conn

    def notify(self, connection, data=None):
        if not self.notify_ok:
            raise GattError("not a notify characteristic")
        if not connection.is_connected():
            raise GattError("not connected")
        if len(data) > connection.mtu - 3:
            raise GattError("notification of %d bytes at MTU %d" % (len(data), connection.mtu))
        connection.central.notified.append(bytes(data))


class BufferedCharacteristic(Characteristic):
    def __init__(self, service, uuid, max_len=20, append=False, **kw):
        Characteristic.__init__(self, service, uuid, **kw)
        self.max_len = max_len


def register_services(*services):
    for s in services:
        _services.append(s)


def _characteristic(uuid):
    for s in _services:
        for c in s.characteristics:
            if c.uuid == uuid:
                return c
    raise GattError("no such characteristic")


class DeviceConnection:
    def __init__(self, central):
        self.central = central
        self.mtu = 23
        self.connected = True

    def is_connected(self):
        return self.connected

    async def exchange_mtu(self, mtu=None, timeout_ms=1000):
        # both sides offer; the smaller wins (Core Spec Vol 3 Part F 3.4.2)
        if self.central.mtu_max is None:
            raise GattError("the phone does not answer MTU exchange")
        self.mtu = min(mtu or 23, self.central.mtu_max)
        return self.mtu


class Central:
    """The phone: connect() queues it for the next advertise()."""

    def __init__(self, mtu_max=247):
        self.mtu_max = mtu_max
        self.notified = []
        self.conn = None
        _centrals.append(self)

    def write(self, uuid, data):
        c = _characteristic(uuid)
        if not c.write:
            raise GattError("not writable")
        if len(data) > self.conn.mtu - 3 or len(data) > c.max_len:
            raise GattError("write of %d bytes at MTU %d (attribute %d)" % (len(data), self.conn.mtu, c.max_len))
        c._q.append((self.conn, bytes(data)))
        c._ev.set()

    def disconnect(self):
        self.conn.connected = False

    def received(self):
        out = b"".join(self.notified)
        self.notified = []
        return out


_advertised = []


async def advertise(interval_us, adv_data=None, resp_data=None, connectable=True, limited_disc=False,
                    services=None, appearance=0, manufacturer=None, name=None, timeout_ms=None):
    _advertised.append((name, services))
    while not _centrals:
        await asyncio.sleep_ms(5)
    central = _centrals.pop(0)
    central.conn = DeviceConnection(central)
    return central.conn
