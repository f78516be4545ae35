"""A private PostgreSQL server for the ``postgres`` tests: started in a temp dir, stopped after.

``GENLAB_TEST_POSTGRES_URL`` points the tests at a server that already runs (one database the
tests may fill). Otherwise ``start_server`` runs ``initdb`` and ``pg_ctl`` from the PATH or
Debian's ``/usr/lib/postgresql/<version>/bin`` on a free localhost port, with trust auth for
the test user; as root (which PostgreSQL refuses to run as) it runs them as the ``postgres``
system user the Debian package creates. Anything missing skips the test with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

URL_ENV = "GENLAB_TEST_POSTGRES_URL"
USER = "genlab"
DATABASE = "genlab_sweeps"


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("PostgreSQL refuses to run as root and runuser is not available")
    return [runuser, "-u", "postgres", "--", *argv]


@contextmanager
def start_server() -> Iterator[str]:
    """A PostgreSQL URL for a fresh database, on a server that lives for the block."""
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    pytest.importorskip("psycopg", reason="pip install 'genlab[postgres]' for the driver")
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); "
                    "scripts/ci_postgres.sh installs it in CI")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="genlab-pg-"))
    data, port = root / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    try:
        subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", USER, "--auth=trust",
                                        "-E", "UTF8"]), check=True, capture_output=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l",
                                        str(root / "server.log"), "-w", "start"]),
                       check=True, capture_output=True)
        try:
            import psycopg

            with psycopg.connect(f"host=127.0.0.1 port={port} user={USER} dbname=postgres",
                                 autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
            yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate",
                                            "stop"]), capture_output=True)
    except subprocess.CalledProcessError as err:
        log = (root / "server.log")
        detail = log.read_text(errors="replace")[-500:] if log.exists() else ""
        pytest.fail(f"could not start PostgreSQL: {err.stderr!r} {detail}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
