"""A Pen node's BLE GATT service and a phone, on bumble's virtual controllers
(no radio, no BlueZ): two bumble Devices on a LocalLink. The node side hosts
the Nordic UART service and feeds what is written to RX into a LinkService
(the firmware's, on CPython), notifying its answers on TX in att_mtu - 3
pieces; the phone side is BumbleAdapter, the adapter pen.transport.ble's
GattLink drives (the same place BleakAdapter sits on a real phone/PC)."""
import asyncio

from bumble.core import UUID
from bumble.device import Peer
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.testing.test_utils import TwoDevices

from pen.transport.ble import NUS_RX, NUS_SERVICE, NUS_TX


class BumbleNode:
    def __init__(self, device, feed):
        self.device = device
        self.feed = feed  # bytes -> bytes (LinkService.feed with a clock)
        self.rx = Characteristic(UUID(NUS_RX), Characteristic.Properties.WRITE
                                 | Characteristic.Properties.WRITE_WITHOUT_RESPONSE, Characteristic.WRITEABLE,
                                 CharacteristicValue(write=self._on_write))
        self.tx = Characteristic(UUID(NUS_TX), Characteristic.Properties.NOTIFY, Characteristic.READABLE, b"")
        device.add_service(Service(UUID(NUS_SERVICE), [self.rx, self.tx]))
        self.out = asyncio.Queue()
        self.writes = []
        self.notified = []
        self.conn = None
        self.loop = asyncio.get_running_loop()
        self.loop.create_task(self._notifier())

    def push(self, data):
        """Bytes the node sends on its own (events), from any thread."""
        if self.conn is not None:
            self.loop.call_soon_threadsafe(self.out.put_nowait, (self.conn, bytes(data)))

    def _on_write(self, connection, value):
        self.conn = connection
        self.writes.append(len(value))
        data = self.feed(bytes(value))
        if data:
            self.out.put_nowait((connection, data))

    async def _notifier(self):
        while True:
            conn, data = await self.out.get()
            n = conn.att_mtu - 3
            for i in range(0, len(data), n):
                self.notified.append(len(data[i:i + n]))
                await self.device.notify_subscriber(conn, self.tx, data[i:i + n], force=True)


class BumbleAdapter:
    def __init__(self, feed, mtu=None):
        self.feed = feed
        self.want_mtu = mtu  # None: keep the default 23
        self.node = None

    async def connect(self, on_notify):
        self.devices = TwoDevices()
        self.node = BumbleNode(self.devices[1], self.feed)
        await self.devices.setup_connection()
        self.conn = self.devices.connections[0]
        self.peer = Peer(self.conn)
        if self.want_mtu:
            await self.peer.request_mtu(self.want_mtu)
        await self.peer.discover_services()
        await self.peer.discover_characteristics()
        self.rx = self.peer.get_characteristics_by_uuid(UUID(NUS_RX))[0]
        tx = self.peer.get_characteristics_by_uuid(UUID(NUS_TX))[0]
        await self.peer.subscribe(tx, lambda value: on_notify(bytes(value)))

    @property
    def mtu(self):
        return self.conn.att_mtu

    async def write(self, piece):
        await self.peer.write_value(self.rx, piece, with_response=False)

    async def disconnect(self):
        await self.conn.disconnect()
