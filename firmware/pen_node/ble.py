"""The link over BLE on the node (aioble): the Nordic UART service carrying
the link's bytes unchanged (docs/link.md), so COBS's zero delimiter
reassembles frames however the radio cut them.

    ble = BleLink(service, "pen-7")      registers the GATT service
    await ble.serve(clock_ms)            advertise, serve one phone at a time
    ble.send(data)                       events from LinkService.poll, if a phone is connected

The phone writes link bytes to RX (write or write-without-response, any
size up to its MTU - 3); the node notifies its answers on TX, cut into
pieces of MTU - 3 bytes: 20 until the phone agrees a larger MTU (the node
asks for MTU_WANTED). A node with pairing (pen_node.pairing) serves BLE
exactly as serial: sealed frames, so the air carries only ciphertext.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import aioble
import bluetooth

_NUS = bluetooth.UUID("6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
_RX = bluetooth.UUID("6E400002-B5A3-F393-E0A9-E50E24DCCA9E")  # phone -> node (write)
_TX = bluetooth.UUID("6E400003-B5A3-F393-E0A9-E50E24DCCA9E")  # node -> phone (notify)
_ATT_HEADER = const(3)  # opcode + handle: a notification carries MTU - 3 bytes
_MTU_DEFAULT = const(23)  # BLE 4.0 minimum: 20-byte pieces
MTU_WANTED = const(247)  # one LL data PDU with data length extension: 244-byte pieces
_RX_MAX = const(244)  # the RX attribute's buffer: the largest write at MTU_WANTED
_ADV_US = const(250000)


class BleLink:
    def __init__(self, service, name):
        self.service = service  # a LinkService: feed(bytes, now_ms) -> bytes
        self.name = name
        svc = aioble.Service(_NUS)
        self.rx = aioble.BufferedCharacteristic(svc, _RX, write=True, write_no_response=True, capture=True,
                                                max_len=_RX_MAX)
        self.tx = aioble.Characteristic(svc, _TX, notify=True)
        aioble.register_services(svc)
        self.conn = None
        self.mtu = _MTU_DEFAULT
        self.stats = {"connections": 0, "writes": 0, "notifies": 0}

    def send(self, data):
        """Notify data in MTU - 3 pieces; False when no phone is connected
        (the caller keeps events: LinkAuth holds them for the next session)."""
        conn = self.conn
        if conn is None or not data:
            return conn is not None
        n = self.mtu - _ATT_HEADER
        mv = memoryview(data)
        for i in range(0, len(data), n):
            self.tx.notify(conn, mv[i:i + n])
            self.stats["notifies"] += 1
        return True

    async def serve(self, clock_ms):
        while True:
            conn = await aioble.advertise(_ADV_US, name=self.name, services=[_NUS])
            await self.session(conn, clock_ms)

    async def session(self, conn, clock_ms):
        self.stats["connections"] += 1
        self.mtu = _MTU_DEFAULT
        try:
            await conn.exchange_mtu(MTU_WANTED)
            self.mtu = conn.mtu
        except Exception:  # the phone keeps 23: 20-byte pieces
            pass
        self.conn = conn
        try:
            while conn.is_connected():
                try:
                    _, data = await self.rx.written(timeout_ms=1000)
                except Exception:  # asyncio.TimeoutError: check the connection, wait again
                    continue
                self.stats["writes"] += 1
                self.send(self.service.feed(data, clock_ms()))
        finally:
            self.conn = None
