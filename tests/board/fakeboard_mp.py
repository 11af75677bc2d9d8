# The fake board's interpreter: runs under the MicroPython unix port with the
# board's flash (a host folder) mounted at "/", as an ESP32 shows it. Reads
# code chunks (a decimal length line, then the code) from stdin and answers as
# MicroPython's raw REPL does: output, 0x04, error text, 0x04. A chunk that
# raises SystemExit (machine.reset below) ends the process: the board reboots.
import sys
import os
import vfs

root = sys.argv[1]
vfs.umount("/")
vfs.mount(vfs.VfsPosix(root), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]


class _Machine:
    @staticmethod
    def reset():
        raise SystemExit

    @staticmethod
    def unique_id():
        return b"\x24\x0a\xc4\x00\x12\x34"


sys.modules["machine"] = _Machine
out = sys.stdout
g = {"__name__": "__main__"}
while True:
    line = sys.stdin.readline()
    if not line:
        break
    code = sys.stdin.buffer.read(int(line)).decode()
    try:
        exec(code, g)
        out.write("\x04\x04")
    except SystemExit:
        out.write("\x04\x04")
        break
    except BaseException as e:
        out.write("\x04")
        sys.print_exception(e, out)
        out.write("\x04")
