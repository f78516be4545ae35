"""genlab.core.io: atomic writes, locked JSONL appends, fresh directories."""

import errno
import os
import stat

import pytest

from genlab.core import io


def test_atomic_write_leaves_the_old_file_and_no_temp_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.jsonl"
    target.write_text("old")

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError):
        io.write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]


def test_enospc_while_writing_json_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    io.write_json_atomic(target, {"status": "completed"})
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(OSError):
        io.write_json_atomic(target, {"status": "stopped"})
    monkeypatch.setattr(io.os, "fsync", real_fsync)
    assert '"completed"' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_new_files_follow_the_umask_and_existing_ones_keep_their_mode(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_text_atomic(tmp_path / "a.txt", "a")
        mine = tmp_path / "b.txt"
        mine.write_text("b")
        mine.chmod(0o600)
        io.write_text_atomic(mine, "b2")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600


def test_apply_umask_opens_a_library_written_tree_to_the_umask(tmp_path):
    # What mkdtemp (0700) and safetensors (0600) leave behind, as genlab wrote it.
    tree = tmp_path / "adapter"
    (tree / "sub").mkdir(parents=True)
    for path in (tree / "weights.safetensors", tree / "sub" / "x.json"):
        path.write_text("x")
        path.chmod(0o600)
    for path in (tree, tree / "sub"):
        path.chmod(0o700)
    old = os.umask(0o022)
    try:
        io.apply_umask(tree)
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [tree, *tree.rglob("*")]}
    assert modes == {"adapter": 0o755, "adapter/sub": 0o755, "adapter/sub/x.json": 0o644,
                     "adapter/weights.safetensors": 0o644}


def test_json_is_strict_and_jsonl_reads_back_complete_lines_only(tmp_path):
    path = tmp_path / "rows.jsonl"
    io.append_jsonl(path, {"a": 1, "nan": float("nan"), "t": (1, 2)})
    io.append_jsonl(path, {"a": 2})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"a": 3')  # torn by a kill
    assert io.read_jsonl(path) == [{"a": 1, "nan": None, "t": [1, 2]}, {"a": 2}]
    io.truncate_torn_line(path)
    assert path.read_text().endswith('{"a": 2}\n')
    assert io.read_jsonl(tmp_path / "absent.jsonl") == []


def test_fresh_dir_is_path_safe_and_never_an_existing_path(tmp_path):
    first = io.fresh_dir(tmp_path, "my run/1", prefix="sweep-")
    assert first.parent == tmp_path and first.name.startswith("sweep-")
    assert first.name.endswith("-my-run-1")
    first.mkdir()
    assert io.fresh_dir(tmp_path, "my run/1", prefix="sweep-") != first
