"""The village simulator: the firmware's own MeshNode (imported from
firmware/, never copied) on a simulated LoRa medium, with a Meshtastic-style
flooding baseline on the same topology and load. See docs/sim.md."""
import sys
from pathlib import Path

_FIRMWARE = Path(__file__).resolve().parents[3] / "firmware"
if _FIRMWARE.is_dir() and str(_FIRMWARE) not in sys.path:
    sys.path.insert(0, str(_FIRMWARE))
