"""The link over a TCP socket (a node behind a serial-to-TCP bridge, or a
test's far end)."""
import select
import socket


class TcpPort:
    def __init__(self, host, port, timeout_s=5.0):
        try:
            self.s = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as e:
            raise OSError("cannot connect to %s:%d: %s" % (host, port, e))
        self.s.setblocking(False)
        self.name = "tcp:%s:%d" % (host, port)

    def read(self, timeout_s):
        r, _, _ = select.select([self.s], [], [], timeout_s)
        if not r:
            return b""
        data = self.s.recv(4096)
        if not data:
            raise EOFError("%s closed the link" % self.name)
        return data

    def write(self, data):
        self.s.setblocking(True)
        try:
            self.s.sendall(data)
        finally:
            self.s.setblocking(False)

    def close(self):
        self.s.close()
