"""CPU threads: the default, applying a count, and where it is recorded."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from genlab.core.configs import ConfigError
from genlab.core.events import RowFinished
from genlab.core.generation.decode import iter_generate
from genlab.core.modeling import threads as threads_mod
from genlab.core.modeling.loading import ModelLoadError, load_model
from genlab.core.modeling.threads import default_threads, physical_cores, use_threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_physical_cores_is_within_the_logical_cpus():
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


def test_physical_cores_counts_cores_not_hyperthreads(monkeypatch, tmp_path):
    """Two logical CPUs on one core count once."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    real = threads_mod.Path

    def fake_path(text):
        if text.startswith("/sys/devices/system/cpu/cpu"):
            cpu = text.split("cpu")[-1].split("/")[0]
            topology = tmp_path / cpu
            topology.mkdir(exist_ok=True)
            (topology / "physical_package_id").write_text("0\n")
            (topology / "core_id").write_text("0\n")
            return topology
        if text == "/sys/fs/cgroup/cpu.max":
            return tmp_path / "no-cgroup"
        return real(text)

    monkeypatch.setattr(threads_mod, "Path", fake_path)
    assert physical_cores() == 1


def test_a_cgroup_quota_caps_the_cores(monkeypatch, tmp_path):
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")  # one CPU's worth
    real = threads_mod.Path
    monkeypatch.setattr(threads_mod, "Path",
                        lambda text: quota if text == "/sys/fs/cgroup/cpu.max" else real(text))
    assert physical_cores() == 1


def test_default_threads_follows_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    for bad in ("", "0", "two"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert default_threads() == physical_cores()
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == physical_cores()


def test_use_threads_sets_torch_and_returns_the_count(monkeypatch):
    assert use_threads(2) == 2 and torch.get_num_threads() == 2
    assert use_threads(1) == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert use_threads(None) == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_use_threads_refuses_a_bad_count(bad):
    with pytest.raises(ConfigError, match="threads"):
        use_threads(bad)


def test_load_model_applies_and_records_threads(tiny_llama):
    loaded = load_model(str(tiny_llama), device="cpu", threads=2)
    assert torch.get_num_threads() == 2
    assert loaded.threads == 2
    assert loaded.runtime == {"device": "cpu", "dtype": "float32", "quantize": "none",
                              "threads": 2, "compile": False}
    assert loaded.describe().endswith("cpu, float32, 2 threads)")
    assert load_model(str(tiny_llama), device="cpu", threads=1).describe().endswith(
        ", 1 thread)")


def test_load_model_threads_error_is_one_line(tiny_llama):
    with pytest.raises(ModelLoadError, match=r"^--threads 0: must be an integer >= 1$"):
        load_model(str(tiny_llama), device="cpu", threads=0)


def test_generation_uses_the_models_threads_in_its_own_thread(tiny_llama):
    """torch keeps a thread count per OS thread: the decode loop sets it where it runs."""
    from genlab.core.configs import GenerationRequest, SamplingParams

    loaded = load_model(str(tiny_llama), device="cpu", threads=1)
    seen = {}

    def worker():
        torch.set_num_threads(2)  # this thread had its own count
        torch.ones(64, 64) @ torch.ones(64, 64)
        request = GenerationRequest("Once upon", SamplingParams(max_new_tokens=2))
        events = list(iter_generate(loaded, [request]))
        seen["threads"] = torch.get_num_threads()
        seen["finished"] = sum(isinstance(e, RowFinished) for e in events)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"threads": 1, "finished": 1}
