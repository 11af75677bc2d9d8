"""pen init: create the Pen folder (~/.pen, --home or PEN_HOME). Every other
command needs it to exist, so a mistyped --home is an error, not a new,
empty CTB."""
from pen.commands._common import home_path


def register(sub):
    p = sub.add_parser("init", help="create the Pen folder (keys, CTB) before first use")
    p.set_defaults(func=cmd_init)


def cmd_init(args):
    h = home_path(args)
    if h.is_dir():
        print("the Pen folder %s is ready (it exists already)" % h)
        return 0
    try:
        h.mkdir(mode=0o700, parents=True)
    except OSError as e:
        from pen.cli import PenError
        raise PenError("cannot create the Pen folder %s: %s" % (h, (e.strerror or str(e)).lower()))
    print("created the Pen folder %s; next: pen keys new NAME" % h)
    return 0
