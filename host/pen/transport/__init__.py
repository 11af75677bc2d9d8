"""Transports for the link (docs/link.md), all with one shape:
read(timeout_s) -> bytes (b"" when nothing came), write(data), close(),
.name. The link's framing (COBS, zero-delimited) rides on each unchanged.

    open_link("serial:/dev/ttyUSB0")       USB serial, UART, a pty's path
    open_link("tcp:HOST:PORT")             a node or bridge on a TCP socket
    open_link("pty:COMMAND")               a node process on a raw pty
    open_link("ble:NAME")                  Nordic UART service (bleak)
    open_link("meshtastic:serial:PORT[@DEST]" or "meshtastic:tcp:HOST[:PORT][@DEST]")
                                           a stock Meshtastic radio, Pen frames
                                           on a private app port (transport.meshtastic)
"""


class LinkSpecError(ValueError):
    pass


def open_link(spec, **kw):
    kind, _, rest = spec.partition(":")
    if not rest:
        raise LinkSpecError("a link is serial:PATH, tcp:HOST:PORT, pty:COMMAND, ble:NAME or "
                            "meshtastic:serial:PORT|tcp:HOST, not %r" % spec)
    if kind == "serial":
        from pen.bridge.serial import SerialPort
        return SerialPort(rest)
    if kind == "tcp":
        from .tcp import TcpPort
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise LinkSpecError("tcp link is tcp:HOST:PORT, not %r" % spec)
        return TcpPort(host, int(port))
    if kind == "pty":
        from pen.bridge.serial import spawn
        return spawn(rest, **kw)[0]
    if kind == "ble":
        from .ble import open_ble
        return open_ble(rest)
    if kind == "meshtastic":
        from .meshtastic import open_meshtastic
        return open_meshtastic(rest, **kw)
    raise LinkSpecError("unknown link kind %r (serial, tcp, pty, ble, meshtastic)" % kind)
