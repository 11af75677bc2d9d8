"""Puts protocol/, firmware/ and this directory on sys.path (imported first by the tests here)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "protocol", ROOT / "firmware", Path(__file__).resolve().parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
