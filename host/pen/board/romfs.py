"""Node bytecode in ROM, as on a board: a ROMFS image of a compiled tree
(the format `mpremote romfs deploy` writes to a board's ROMFS partition, built
with mpremote's own writer), and the unix-port command that runs a module from
it with a board's heap budget beside it (firmware/unix_rom.py).

Why: the unix port loads .mpy files into the heap, a board with a ROMFS
partition or frozen modules executes them in place from flash. Measuring a
node's heap with its bytecode in the heap charges it ~43 KB a board does not
pay; measuring without any bound would hide real growth. Here the bytecode is
in one ROM block outside the budget and everything the node allocates —
module globals, qstrs, classes, functions, its state — is inside it."""
import contextlib
import io
import subprocess
from pathlib import Path

_free = {}


def image(tree):
    """The ROMFS image of a compiled tree (its .mpy files and directories)."""
    try:
        from mpremote.romfs import make_romfs
    except ImportError:
        raise RuntimeError("a ROM image of the node needs mpremote 1.25 or later (pip install mpremote)")
    with contextlib.redirect_stdout(io.StringIO()):  # make_romfs prints the tree
        return make_romfs(str(tree), mpy_cross=False)


def write_image(tree, out=None):
    """image(tree) written next to the tree (or to out) when it changed; -> its path."""
    data = image(tree)
    out = Path(out) if out else Path(str(tree).rstrip("/") + ".rom")
    if not out.exists() or out.read_bytes() != data:
        out.write_bytes(data)
    return out


def _kib(budget):
    s = str(budget).lower()
    return int(s[:-1]) * 1024 if s.endswith("k") else int(s)


def free_at_start(exe, budget, env, cwd):
    """The free heap unix_rom's start-up leaves in a heap of `budget` alone."""
    key = (exe, str(budget), cwd)
    if key not in _free:
        out = subprocess.run([exe, "-X", "heapsize=%d" % _kib(budget), "-m", "unix_rom", "-", "0", "-"],
                             env=env, cwd=cwd, capture_output=True, text=True, check=True).stdout
        _free[key] = int(out.split()[-1])
    return _free[key]


def command(exe, rom, module, args=(), budget="64k", env=None, cwd=None):
    """argv that runs module (or "module:func") from the image rom with the
    free heap of `budget`; unix_rom must be importable in env/cwd."""
    free = free_at_start(exe, budget, env, cwd)
    heap = _kib(budget) + Path(rom).stat().st_size + 16 * 1024
    return [exe, "-X", "heapsize=%d" % heap, "-m", "unix_rom", str(rom), str(free), module] + [str(a) for a in args]
