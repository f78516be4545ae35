"""Where a sweep's study lives: the storage URL, the database connection, trial heartbeats.

Owns the ``--storage`` side of ``genlab sweep``. The default is an SQLite file in the output
directory (``<out>/study.db``), right for the workers of one machine. Workers on several
machines share one study through a database server: ``postgresql://USER:PASSWORD@HOST/DB``
(``pip install 'genlab[postgres]'`` brings the psycopg driver). SQLite on a network share is
not safe for that (its file locks do not hold over NFS/SMB).

* ``check_storage_url`` rejects what cannot work (not a URL, an unsupported database, a missing
  driver) before anything is written, as one line.
* ``make_storage`` opens it with heartbeats on; a connection that fails is one line too.
* ``Heartbeat`` records a running trial's heartbeat from a thread, so a trial whose process or
  machine died is noticed (``study.recover``) after ``GRACE_S`` seconds and run again.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    ProgrammingError,
    SQLAlchemyError,
)

from genlab.core.experiments.study import SweepSetupError

STUDY_FILE = "study.db"
CREATE_ATTEMPTS = 5
"""Tries at opening a storage whose tables another process is creating at the same moment."""
STORAGE_BACKENDS = ("sqlite", "postgresql", "mysql")
STORAGE_EXAMPLES = "sqlite:///PATH/study.db or postgresql://USER:PASSWORD@HOST/DB"
HEARTBEAT_S = 10
"""Seconds between the heartbeats a worker records for its running trial."""
GRACE_S = 120
"""A RUNNING trial whose last heartbeat is older than this is failed and run again (its process
or machine is gone): long enough for a slow connection, short enough to not stall a sweep."""


def default_storage(out_dir: str | Path) -> str:
    """``sqlite:///<out>/study.db`` (absolute)."""
    return f"sqlite:///{Path(out_dir).resolve() / STUDY_FILE}"


def check_storage_url(url: str) -> str:
    """``url`` checked before anything is written: a database Optuna can use, with its driver.

    ``postgresql://`` uses psycopg (``pip install 'genlab[postgres]'``) when SQLAlchemy's
    default PostgreSQL driver is not installed.

    Raises:
        SweepSetupError: Not a database URL, an unsupported database, or a missing driver.
    """
    shown = _shown(url)
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:  # (a kind of ArgumentError: first)
        raise SweepSetupError(f"--storage {shown}: unsupported database "
                              f"{url.partition(':')[0]!r}; use {STORAGE_EXAMPLES}") from None
    except ArgumentError:
        raise SweepSetupError(f"--storage {shown}: not a database URL; use {STORAGE_EXAMPLES}"
                              ) from None
    backend = parsed.get_backend_name()
    if backend not in STORAGE_BACKENDS:
        raise SweepSetupError(f"--storage {shown}: genlab sweeps run on "
                              f"{', '.join(STORAGE_BACKENDS)}; use {STORAGE_EXAMPLES}")
    if _has_driver(dialect):
        return url
    if backend == "postgresql" and "+" not in parsed.drivername and _importable("psycopg"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    hint = ("pip install 'genlab[postgres]' (psycopg)" if backend == "postgresql" else
            f"install the Python driver for {parsed.drivername}")
    raise SweepSetupError(f"--storage {shown}: the database driver is not installed; {hint}")


def _shown(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: show it as given
        return url


def _has_driver(dialect: Any) -> bool:
    load = getattr(dialect, "import_dbapi", None) or getattr(dialect, "dbapi", None)
    try:
        load()
    except ImportError:
        return False
    return True


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_storage(url: str) -> Any:
    """An Optuna ``RDBStorage`` for ``url`` that records each trial's heartbeat.

    SQLite waits for locks instead of failing. A RUNNING trial whose heartbeat is older than
    ``GRACE_S`` (its process or machine died) is failed by ``recover`` and run again.

    Raises:
        SweepSetupError: The database cannot be opened (server down, bad credentials, ...).
    """

    kwargs: dict[str, Any] = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    attempt = 0
    while True:
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except SQLAlchemyError as err:
            attempt += 1
            # Two processes created Optuna's tables in an empty database at once (two
            # machines starting together): one won, and the tables exist on the next try.
            if _lost_creation_race(err) and attempt < CREATE_ATTEMPTS:
                time.sleep(0.2 * attempt)
                continue
            detail = " ".join(str(getattr(err, "orig", None) or err).split())[:200]
            raise SweepSetupError(f"--storage {_shown(url)}: cannot open the study database "
                                  f"({detail}); check that the server runs and that the URL, "
                                  "user and password are right") from None


def _lost_creation_race(err: Exception) -> bool:
    """True for the errors PostgreSQL gives the loser of two concurrent ``CREATE TYPE`` /
    ``CREATE TABLE`` runs (a duplicate key in its catalog, or "already exists")."""
    text = str(err).lower()
    return isinstance(err, (IntegrityError, ProgrammingError)) and (
        "already exists" in text or "duplicate" in text)


class Heartbeat:
    """Records a claimed trial's heartbeat every ``HEARTBEAT_S`` seconds from a thread.

    Use as a context manager around the trial; the storage must come from ``make_storage``.
    """

    def __init__(self, study: Any, trial: Any) -> None:
        self.storage = study._storage  # noqa: SLF001 - the study's own storage object
        self.trial_id = trial._trial_id  # noqa: SLF001 - the id the storage knows it by
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if getattr(self.storage, "get_heartbeat_interval", lambda: None)():
            self._thread = threading.Thread(target=self._beat, daemon=True,
                                            name=f"genlab-heartbeat-{self.trial_id}")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S)

    def _beat(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(Exception):  # a lost connection: the next beat retries
                self.storage.record_heartbeat(self.trial_id)
            self._done.wait(HEARTBEAT_S)
