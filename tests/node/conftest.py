"""A real PostgreSQL server on loopback for the tests marked `postgres`; the
ingest tests' verify worker and payments (at the end).

Session-scoped: initdb into a temporary folder, pg_ctl start on a free port
on 127.0.0.1 (trust auth, loopback only), one fresh database per test, and
the server stopped at the end. PostgreSQL refuses to run as root, so as root
the server runs as the `postgres` user (runuser) with the folder owned by it.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest


def _pg_bin():
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if cands:
        return os.path.dirname(cands[-1])
    exe = shutil.which("initdb")
    return os.path.dirname(os.path.realpath(exe)) if exe else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def pg_server():
    bindir = _pg_bin()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found (apt-get install postgresql; scripts/test does it)")
    folder = tempfile.mkdtemp(prefix="pen-pg-")
    data = os.path.join(folder, "data")
    prefix = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chmod(folder, 0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*cmd):
        subprocess.run(prefix + list(cmd), check=True, capture_output=True, timeout=120, cwd=folder)

    run(os.path.join(bindir, "initdb"), "-D", data, "-U", "pen", "--auth=trust", "-E", "UTF8", "--no-sync")
    opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" % (port, folder)
    run(os.path.join(bindir, "pg_ctl"), "-D", data, "-o", opts, "-l", os.path.join(folder, "log"), "-w", "start")
    try:
        yield "postgresql://pen@127.0.0.1:%d" % port
    finally:
        subprocess.run(prefix + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, cwd=folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def new_pg_url(pg_server):
    """new_pg_url() -> the URL of a fresh, empty database on the session's server."""
    import psycopg

    def make():
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(pg_server + "/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE %s" % name)
        return "%s/%s" % (pg_server, name)
    return make


@pytest.fixture
def pg_url(new_pg_url):
    return new_pg_url()


@pytest.fixture(scope="module")
def pool():
    """One verify worker process (pen.verifypool), shared by a module's tests."""
    from pen.verifypool import ParallelVerifier
    p = ParallelVerifier(1)
    yield p
    p.close()


@pytest.fixture(scope="module")
def payments():
    """(base records, payments) of the ingest bench's workload, small."""
    from pen.ingest_bench import workload
    return workload(tokens=120, users=7)
