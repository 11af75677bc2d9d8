"""Opening a SQLite file that several connections share (the bridge's
gateway, its upload worker and `pen bridge status`; a CTB node and the CLI).

Switching a file to WAL takes an exclusive lock for a moment, and SQLite
answers SQLITE_BUSY at once to a second connection doing the same instead of
waiting on its busy handler: two threads opening a new file together lost
one of them (the bridge's upload worker died with "database is locked" and
no receipt ever came back). So the switch is retried until BUSY_S, and every
later statement waits up to BUSY_S for a lock (a slow SD card's fsync), never
failing the caller at the first contention."""
import sqlite3
import time

BUSY_S = 30.0


def connect(path, busy_s=BUSY_S, sleep=time.sleep, **kw):
    """A connection in autocommit mode (isolation_level=None) with the file
    in WAL mode; raises sqlite3.OperationalError only after busy_s of
    contention."""
    db = sqlite3.connect(str(path), timeout=busy_s, isolation_level=None, **kw)
    wait, waited = 0.01, 0.0
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or waited >= busy_s:
                db.close()
                raise
            sleep(wait)
            waited += wait
            wait = min(wait * 2, 0.5)
