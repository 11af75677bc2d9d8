"""Puts protocol/, firmware/ and this directory on sys.path (imported first by the tests here)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (ROOT / "protocol", ROOT / "firmware", HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
