"""Putting Pen on a board: where the firmware's sources are (a checkout or an
installed wheel), what each node role carries (`roles`), compiling them with
mpy-cross (`mpy`), and provisioning a board over USB with esptool and
mpremote (`provision`). docs/deploy.md walks through it."""
