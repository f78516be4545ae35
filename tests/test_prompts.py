"""The prompt-file loader, and every prompt set shipped in prompts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from genlab.core.generation.prompts import JSONL_SUFFIXES, PromptFileError, load_prompts

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
PROMPT_SUFFIXES = (".txt", *JSONL_SUFFIXES)
SHIPPED = sorted(p for p in PROMPTS_DIR.iterdir() if p.suffix in PROMPT_SUFFIXES)


def test_prompt_sets_are_shipped():
    assert len(SHIPPED) >= 3


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_prompt_set_loads(path):
    prompts = load_prompts(path)
    assert prompts and all(isinstance(p, str) and p.strip() for p in prompts)
    assert len(set(prompts)) == len(prompts), "duplicate prompts"


def test_txt_one_prompt_per_line_blank_lines_skipped(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("first\n\n   \nsecond line\r\nthird", encoding="utf-8")
    assert load_prompts(f) == ["first", "second line", "third"]


def test_jsonl_prompt_field_extra_fields_ignored(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a\\nb", "id": 1}\n\n{"prompt": "c"}\n', encoding="utf-8")
    assert load_prompts(f) == ["a\nb", "c"]


def test_utf8_bom_is_dropped(tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes("\ufeffhéllo\n".encode())
    assert load_prompts(f) == ["héllo"]


@pytest.mark.parametrize("name,content,needle", [
    ("empty.txt", b"", "no prompts"),
    ("blank.txt", b"\n  \n", "no prompts"),
    ("latin1.txt", "ok\ncaf\u00e9\n".encode("latin-1"), "line 2: not UTF-8"),
    ("noprompt.jsonl", b'{"prompt": "a"}\n{"text": "b"}\n',
     'line 2: no "prompt" or "messages" field'),
    ("badjson.jsonl", b'{"prompt": "a"}\n\n{"prompt": \n', "line 3: invalid JSON"),
    ("notobj.jsonl", b'["a"]\n', 'line 1: a JSON list, not an object'),
    ("nonstr.jsonl", b'{"prompt": 3}\n', "line 1: \"prompt\" must be a non-empty string"),
])
def test_bad_files_give_one_line_errors(tmp_path, name, content, needle):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(PromptFileError) as info:
        load_prompts(f)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(PromptFileError, match="no such file"):
        load_prompts(tmp_path / "nope.txt")
    with pytest.raises(PromptFileError, match="is a directory"):
        load_prompts(tmp_path)


def test_a_conversation_counts_all_its_turns_against_the_prompt_limit(tmp_path, monkeypatch):
    """Each turn is short, but together they pass MAX_PROMPT_CHARS: refused, naming the line."""
    import json

    from genlab.core.generation import prompts

    monkeypatch.setattr(prompts, "MAX_PROMPT_CHARS", 100)
    turns = [{"role": r, "content": "x" * 40} for r in ("user", "assistant", "user")]
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "ok"}]}) + "\n"
                    + json.dumps({"messages": turns}) + "\n", encoding="utf-8")
    with pytest.raises(PromptFileError, match=r"line 2: a conversation of 120 characters"):
        prompts.load_prompt_set(path)
    path.write_text(json.dumps({"messages": turns[:2]}) + "\n", encoding="utf-8")
    assert prompts.load_prompt_set(path)[0].messages == (("user", "x" * 40),
                                                         ("assistant", "x" * 40))
