# Freeze the node into a MicroPython firmware image, so its bytecode stays in
# flash instead of the heap (~65 KB of heap when loaded from .mpy files):
#   make -C ports/esp32 BOARD=ESP32_GENERIC_S3 FROZEN_MANIFEST=/path/to/pen/firmware/manifest.py
# The same modules and dependencies as package.json (mip); tests/firmware/test_board.py checks they agree.
include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (asyncio, ...)
require("lora-sx126x")
require("lora-sx127x")
require("lora-async")
require("aioble")
package("pen_node")
package("pen_protocol", base_path="../protocol")
module("main.py")
