# Boot a provisioned fake flash under the MicroPython unix port: mount the
# folder at "/", put stand-ins for the board's hardware (machine, lora) in
# sys.modules -- never on the flash -- then run main.py's run() as a board
# does for RUN_MS and report what the node did to its flash.
import sys
import os
import vfs
import asyncio

root, run_ms = sys.argv[1], int(sys.argv[2])
vfs.umount("/")
vfs.mount(vfs.VfsPosix(root), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2
    PULL_DOWN = 3
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, n, mode=None, pull=None, value=None):
        self.n = n

    def value(self, v=None):
        return 0  # no radio IRQ pending, link line idle

    def irq(self, handler=None, trigger=None):
        pass


class SPI:
    def __init__(self, *a, **kw):
        pass


class Machine:
    Pin = Pin
    SPI = SPI

    @staticmethod
    def unique_id():
        return b"\x24\x0a\xc4\x00\x12\x34"

    @staticmethod
    def lightsleep(ms):
        import time
        time.sleep_ms(min(ms, 20))  # as if an event woke it: the boot test has a deadline


class Esp32:
    WAKEUP_ALL_LOW = 0
    WAKEUP_ANY_HIGH = 1

    @staticmethod
    def wake_on_ext0(pin, level):
        pass

    @staticmethod
    def wake_on_ext1(pins, level):
        pass


made = []


class Modem:
    def __init__(self, *a, **kw):
        made.append(kw.get("lora_cfg"))

    def recv_continuous(self):
        return self  # an async iterator, as the driver's (MicroPython has no async generators)

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(3600)  # a quiet channel

    async def send(self, frame):
        pass

    def _cmd(self, fmt, *args):  # SPI commands (regulator, IRQ mask) go nowhere
        pass

    def _radio_isr(self, pin):
        pass


class Lora:
    AsyncSX1262 = Modem
    AsyncSX1276 = Modem


sys.modules["machine"] = Machine
sys.modules["lora"] = Lora
sys.modules["esp32"] = Esp32
import main


async def boot():
    try:
        await asyncio.wait_for(main.run(), run_ms / 1000)
    except asyncio.TimeoutError:
        pass

asyncio.run(boot())
print("radio", made[0]["freq_khz"], made[0]["sf"])
print("link", main.LinkService is not None)
print("journal", os.stat(main.JOURNAL)[6], "duty", os.stat(main.DUTY)[6])
