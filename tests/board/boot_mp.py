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
    OUT = 1
    IN = 0

    def __init__(self, n, mode=None, value=None):
        self.n = n


class SPI:
    def __init__(self, *a, **kw):
        pass


class Machine:
    Pin = Pin
    SPI = SPI

    @staticmethod
    def unique_id():
        return b"\x24\x0a\xc4\x00\x12\x34"


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


class Lora:
    AsyncSX1262 = Modem
    AsyncSX1276 = Modem


sys.modules["machine"] = Machine
sys.modules["lora"] = Lora
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
