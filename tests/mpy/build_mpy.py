"""Compile protocol/, firmware/ and these test scripts to .mpy with mpy-cross,
as a board build does: a 64 KB heap cannot also hold the compiler. Output
mirrors the package layout under OUT (pen.board.mpy does the compiling)."""
import sys
from pathlib import Path

from pen.board.mpy import compile_tree, mpy_cross  # noqa: F401  (mpy_cross: tests import it from here)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "protocol", ROOT / "firmware", ROOT / "tests" / "mpy"]


def _skip(rel):
    return "vectors" in rel.parts or rel.name == "build_mpy.py"


def build(out):
    for src_root in SOURCES:
        if src_root.exists():
            compile_tree(src_root, out, _skip)
    return Path(out)


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build" / "mpy"))
