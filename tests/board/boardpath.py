"""Puts firmware/ (main.py, medium_node.py: top-level board scripts, not a
package) on sys.path for the tests here; pen_node and pen_protocol are
installed packages."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "firmware") not in sys.path:
    sys.path.insert(0, str(ROOT / "firmware"))
