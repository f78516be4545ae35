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


# ----------------------------------------------------------------------------- output dirs


def test_claim_out_dir_uses_new_empty_and_same_kind_and_refuses_the_rest(tmp_path):
    assert io.claim_out_dir(tmp_path / "new", "run") == "new"
    (tmp_path / "empty").mkdir()
    assert io.claim_out_dir(tmp_path / "empty", "run") == "empty"
    mine = tmp_path / "mine"
    mine.mkdir()
    io.write_marker(mine, "run")
    assert io.claim_out_dir(mine, "run") == "same"
    with pytest.raises(io.OutDirError, match="holds a genlab run output, not a sweep"):
        io.claim_out_dir(mine, "sweep")
    assert io.claim_out_dir(mine, "sweep", force=True) == "replace"
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(io.OutDirError, match="genlab did not write.*--force"):
        io.claim_out_dir(users, "run")
    assert io.claim_out_dir(users, "run", is_legacy=lambda p: True) == "same"
    assert io.claim_out_dir(users, "run", force=True) == "replace"
    (tmp_path / "file").write_text("x")
    with pytest.raises(io.OutDirError, match="is a file"):
        io.claim_out_dir(tmp_path / "file", "run", force=True)
    assert (users / "notes.txt").read_text() == "mine"  # deciding never touches anything


def test_a_marker_that_does_not_read_is_no_marker(tmp_path):
    (tmp_path / io.MARKER_FILE).write_text("{not json")
    assert io.read_marker(tmp_path) is None
    (tmp_path / io.MARKER_FILE).write_text('{"kind": "pizza"}')
    assert io.read_marker(tmp_path) is None


def test_replace_dir_keeps_one_complete_copy(tmp_path, monkeypatch):
    old, new = tmp_path / "out", tmp_path / "new"
    old.mkdir()
    (old / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", second_fails)
    with pytest.raises(OSError):
        io.replace_dir(new, old)
    monkeypatch.undo()
    assert (old / "a").read_text() == "old"  # moved back: the previous output is whole
    io.replace_dir(new, old)
    assert (old / "a").read_text() == "new" and not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ----------------------------------------------------------------------------- bounded reads


def test_bounded_reads_stop_one_byte_past_the_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 101)
    assert io.read_bytes_limited(path, 101, "it") == b"x" * 101
    with pytest.raises(io.InputTooLarge, match="big: more than 100 bytes"):
        io.read_bytes_limited(path, 100, "big")


def test_iter_lines_limited_names_the_long_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"short\n" + b"y" * 50 + b"\nend")
    assert [n for n, _ in io.iter_lines_limited(path, 60, "rows")] == [1, 2, 3]
    with pytest.raises(io.InputTooLarge, match="line 2 is longer than 20 bytes"):
        list(io.iter_lines_limited(path, 20, "rows"))


def test_named_os_errors_recovers_the_disk_error_a_library_wrapped(tmp_path):
    target = tmp_path / "optimizer.pt"
    with pytest.raises(OSError) as info, io.named_os_errors(target):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    with pytest.raises(OSError) as info, io.named_os_errors(target):
        raise ValueError("I/O error: No space left on device (os error 28)")
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(KeyError), io.named_os_errors(target):
        raise KeyError("not a disk problem")
