"""Unix port only: run a module whose bytecode lives in a ROM image, as a
board keeps it in flash (a ROMFS partition, `mpremote romfs deploy`, or a
frozen build), with exactly the free heap a board's budget gives beside it.

    micropython -X heapsize=BIG -m unix_rom IMAGE FREE MODULE[:FUNC] [ARGS...]
    micropython -X heapsize=BUDGET -m unix_rom - 0 -     (prints FREE)

The image is read into one block at the start of a heap made larger than the
budget, mounted at /rom (VfsRom: imports execute the bytecode in place,
nothing is copied), and a pad block takes the excess, so MODULE starts with
FREE bytes free: what the same start-up leaves in a heap of BUDGET alone
(the second form measures it). Only /rom and the port's frozen modules are
on sys.path, so no module's bytecode can come from disk into the heap. MODULE runs at import; with :FUNC, FUNC() runs after."""
import gc
import sys


def main():
    image, free, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if image == "-":
        gc.collect()
        print(gc.mem_free())
        return
    import os
    import vfs
    buf = bytearray(os.stat(image)[6])
    with open(image, "rb") as f:
        f.readinto(buf)
    vfs.mount(vfs.VfsRom(buf), "/rom")
    gc.collect()
    excess = gc.mem_free() - free
    if excess < 0:
        print("unix_rom: heap too small for the image and the budget (%d B short)" % -excess)
        raise SystemExit(1)
    pad = bytearray(excess) if excess else None
    sys.path[:] = ["/rom", ".frozen"]  # .frozen: the port's own frozen modules (asyncio), in ROM too
    sys.argv[:] = [name] + sys.argv[4:]
    func = None
    if ":" in name:
        name, func = name.split(":")
    mod = __import__(name)
    if func:
        getattr(mod, func)()
    return buf, pad  # held by the caller: both blocks stay put


_keep = main()
