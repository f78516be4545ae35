"""The study's storage: URL checks before anything is written, and stale-trial recovery."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from genlab.core.experiments import storage
from genlab.core.experiments.storage import check_storage_url, make_storage
from genlab.core.experiments.study import OWNER_ATTR, SweepSetupError, recover


@pytest.mark.parametrize("url, fragment", [
    ("bogus://x", "unsupported database 'bogus'"),
    ("nonsense", "not a database URL"),
    ("", "not a database URL"),
    ("oracle://u@h/db", "genlab sweeps run on sqlite, postgresql, mysql"),
])
def test_unusable_urls_are_one_line(url, fragment):
    with pytest.raises(SweepSetupError, match=fragment) as info:
        check_storage_url(url)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"--storage {url}")


def test_sqlite_and_postgresql_urls_pass():
    assert check_storage_url("sqlite:///x/study.db") == "sqlite:///x/study.db"
    pytest.importorskip("psycopg")
    url = check_storage_url("postgresql://u:pw@h:5432/db")
    assert url.startswith("postgresql") and "pw" in url  # the password is kept, not masked


def test_a_missing_driver_names_the_extra(monkeypatch):
    monkeypatch.setattr(storage, "_has_driver", lambda dialect: False)
    monkeypatch.setattr(storage, "_importable", lambda module: False)
    with pytest.raises(SweepSetupError, match=r"pip install 'genlab\[postgres\]'"):
        check_storage_url("postgresql://u@h/db")


def test_a_server_that_does_not_answer_is_one_line_and_hides_the_password():
    pytest.importorskip("psycopg")
    with pytest.raises(SweepSetupError, match="cannot open the study database") as info:
        make_storage(check_storage_url("postgresql://u:secret@127.0.0.1:9/db"))
    assert "secret" not in str(info.value) and "***" in str(info.value)


def test_a_trial_whose_heartbeat_went_stale_on_another_machine_is_failed(tmp_path,
                                                                         monkeypatch):
    """Owned by a process on another host (its pid means nothing here): only the heartbeat
    tells that it died. After the grace period ``recover`` fails it, so it runs again."""
    monkeypatch.setattr(storage, "HEARTBEAT_S", 1)
    monkeypatch.setattr(storage, "GRACE_S", 1)
    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 's.db'}"),
                                study_name="stale")
    alive, dead = study.ask(), study.ask()
    for trial in (alive, dead):
        trial.set_user_attr(OWNER_ATTR, {"host": "another-machine", "pid": 1})
    with storage.Heartbeat(study, alive):
        dead_beat = storage.Heartbeat(study, dead)
        with dead_beat:
            time.sleep(0.2)  # one beat each, then the dead one stops beating
        time.sleep(2.5)
        recover(study, {})
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states == {alive.number: TrialState.RUNNING, dead.number: TrialState.FAIL}
