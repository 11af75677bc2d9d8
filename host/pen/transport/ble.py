"""The link over BLE on the phone/PC side: the Nordic UART service a Pen node
offers (pen_node.ble), through any async GATT client.

    open_ble("pen-7")             bleak: find the node by name (or address), connect
    GattLink(adapter, name)       the link port (read/write) over an adapter with
                                  async connect(on_notify), write(piece), disconnect()
                                  and .mtu; the adapter runs in a loop thread of its own

Writes go to RX cut into MTU - 3 byte pieces (20 at the default MTU);
notifications from TX are the node's bytes in order, whatever their cut:
COBS's zero delimiter reassembles frames (docs/link.md).
"""
import asyncio
import queue
import threading

NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # we write
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # the node notifies
ATT_HEADER = 3
MTU_WANTED = 247
CONNECT_S = 20.0


class GattLink:
    def __init__(self, adapter, name="ble", timeout_s=CONNECT_S):
        self.adapter = adapter
        self.name = name
        self.inbox = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pen-ble", daemon=True)
        self.thread.start()
        self.bytes_written = 0
        self.pieces_written = 0
        try:
            self._run(adapter.connect(self.inbox.put), timeout_s)
        except BaseException:
            self._stop()
            raise

    def _run(self, coro, timeout_s=10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    @property
    def mtu(self):
        return self.adapter.mtu

    def write(self, data):
        n = self.adapter.mtu - ATT_HEADER
        for i in range(0, len(data), n):
            self._run(self.adapter.write(bytes(data[i:i + n])))
            self.pieces_written += 1
        self.bytes_written += len(data)

    def read(self, timeout_s):
        try:
            out = [self.inbox.get(timeout=timeout_s)]
        except queue.Empty:
            return b""
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return b"".join(bytes(x) for x in out)

    def close(self):
        try:
            self._run(self.adapter.disconnect())
        finally:
            self._stop()

    def _stop(self):
        async def cancel_rest():
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
        try:
            self._run(cancel_rest(), 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


class BleakAdapter:
    """bleak (BlueZ, CoreBluetooth, WinRT): a node by advertised name or address."""

    def __init__(self, name_or_address, scan_s=10.0):
        self.target = name_or_address
        self.scan_s = scan_s
        self.client = None

    async def connect(self, on_notify):
        from bleak import BleakClient, BleakScanner
        dev = await BleakScanner.find_device_by_name(self.target, timeout=self.scan_s)
        if dev is None:
            dev = await BleakScanner.find_device_by_address(self.target, timeout=self.scan_s)
        if dev is None:
            raise OSError("no BLE node named %r in range" % self.target)
        self.client = BleakClient(dev)
        await self.client.connect()
        await self.client.start_notify(NUS_TX, lambda _char, data: on_notify(bytes(data)))

    @property
    def mtu(self):
        return self.client.mtu_size  # bleak negotiates (BlueZ: on connect); 23 until it has

    async def write(self, piece):
        await self.client.write_gatt_char(NUS_RX, piece, response=False)

    async def disconnect(self):
        if self.client is not None:
            await self.client.disconnect()


def open_ble(target):
    return GattLink(BleakAdapter(target), "ble:" + target)
