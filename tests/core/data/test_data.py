"""Data loading, tokenising, packing and eval split (genlab.core.data.packing / data_sources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genlab.core.configs import TrainConfig
from genlab.core.data.packing import (
    IGNORE_INDEX,
    DataError,
    Document,
    load_documents,
    pack_tokens,
    prepare_data,
    split_documents,
    tokenize_documents,
)

STORIES = [
    "Once upon a time there was a little fox.",
    "The fox liked to run and jump.\nShe ran every morning.",
    "Tom and Lily went to the park.",
    "The sun was warm and the sky was blue.",
]
PAIRS = [
    {"q": "Q: What color is the fox?\nA:", "a": " The fox is red."},
    {"q": "Q: Where is Tom?\nA:", "a": " Tom is at the park."},
    {"q": "Q: Who can fly?\nA:", "a": " The small bird can fly."},
]


@pytest.fixture(scope="module")
def tok(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def no_bos_tok(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.bos_token = None
    return tokenizer


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def config(data: Path | str, **kw) -> TrainConfig:
    return TrainConfig(model="unused", data=str(data), **kw)


def encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# ----------------------------------------------------------------------------- formats


def test_txt_blank_lines_strip_and_crlf(tmp_path):
    f = tmp_path / "s.txt"
    f.write_bytes(("\n\n  " + STORIES[0] + "  \r\n \r\n\r\n" + STORIES[1].replace("\n", "\r\n")
                   + "\n\n\n" + STORIES[2] + "\n").encode())
    assert [d.text for d in load_documents(str(f))] == STORIES[:3]


def test_txt_custom_separator(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("".join(s + "\n<|endoftext|>\n" for s in STORIES) + "\n", encoding="utf-8")
    docs = load_documents(str(f), doc_separator="<|endoftext|>")
    assert [d.text for d in docs] == STORIES
    assert all(d.prompt is None and not d.is_pair for d in docs)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_structured_formats_text_field(tmp_path, fmt):
    rows = [{"story": s, "n": i} for i, s in enumerate(STORIES)] + [{"story": "  ", "n": 9}]
    f = tmp_path / f"d.{fmt}"
    if fmt == "jsonl":
        write_jsonl(f, rows)
    elif fmt == "json":
        f.write_text(json.dumps(rows), encoding="utf-8")
    elif fmt == "csv":
        import csv

        with f.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["story", "n"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), f)
    assert [d.text for d in load_documents(str(f), text_field="story")] == STORIES


def test_directory_sorted_mixed_formats(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [{"text": STORIES[2]}, {"text": STORIES[3]}])
    (tmp_path / "a.txt").write_text(f"{STORIES[0]}\n\n{STORIES[1]}\n", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("secret", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("not recursive", encoding="utf-8")
    assert [d.text for d in load_documents(str(tmp_path))] == STORIES


def test_prompt_completion_rows_kept_verbatim(tmp_path):
    f = write_jsonl(tmp_path / "qa.jsonl", [*PAIRS, {"q": "Q: empty?\nA:", "a": ""}])
    docs = load_documents(str(f), prompt_field="q", completion_field="a")
    assert [(d.prompt, d.completion) for d in docs] == [(p["q"], p["a"]) for p in PAIRS]


# ----------------------------------------------------------------------------- tokenising


def test_text_stream_has_start_and_eos_around_every_document(tok):
    docs = [Document(s) for s in STORIES[:2]]
    stream = tokenize_documents(docs, tok)
    bos, eos = tok.bos_token_id, tok.eos_token_id
    expected = [bos, *encode(tok, STORIES[0]), eos, bos, *encode(tok, STORIES[1]), eos]
    assert stream.input_ids.tolist() == expected
    assert stream.labels.tolist() == [IGNORE_INDEX if t == bos else t for t in expected]


def test_without_distinct_bos_eos_starts_every_document(no_bos_tok):
    stream = tokenize_documents([Document(s) for s in STORIES[:2]], no_bos_tok)
    eos = no_bos_tok.eos_token_id
    a, b = encode(no_bos_tok, STORIES[0]), encode(no_bos_tok, STORIES[1])
    assert stream.input_ids.tolist() == [eos, *a, eos, eos, *b, eos]
    assert stream.labels[0] == IGNORE_INDEX and stream.labels[len(a) + 1] == eos


def test_prompt_tokens_carry_no_loss(tok):
    docs = [Document(p["a"], prompt=p["q"]) for p in PAIRS]
    stream = tokenize_documents(docs, tok)
    ids, labels, pos = stream.input_ids.tolist(), stream.labels.tolist(), 0
    for d in docs:
        prompt, completion = encode(tok, d.prompt), encode(tok, d.completion)
        seg = [tok.bos_token_id, *prompt, *completion, tok.eos_token_id]
        assert ids[pos:pos + len(seg)] == seg
        assert labels[pos:pos + len(seg)] == (
            [IGNORE_INDEX] * (1 + len(prompt)) + completion + [tok.eos_token_id])
        pos += len(seg)
    assert pos == len(ids)


# ----------------------------------------------------------------------------- packing


def unpack_scored(blocks) -> list[int]:
    """Scored label ids in order, read back from the blocks."""
    return [t for row in blocks.labels.tolist() for t in row if t != IGNORE_INDEX]


@pytest.mark.parametrize("seq_len", [8, 13, 32])
def test_packing_scores_every_token_once_and_pads_only_the_last_block(tok, seq_len):
    docs = [Document(s) for s in STORIES * 3]
    stream = tokenize_documents(docs, tok)
    blocks = pack_tokens(stream, seq_len, tok.pad_token_id)
    assert blocks.input_ids.shape == blocks.labels.shape == blocks.attention_mask.shape
    assert blocks.input_ids.dtype == blocks.labels.dtype == blocks.attention_mask.dtype == \
        torch.int64
    assert blocks.input_ids.shape[1] == seq_len
    assert bool(blocks.attention_mask[:-1].all())  # no padding before the last block
    last_mask = blocks.attention_mask[-1]
    pad = ~last_mask.bool()
    assert (blocks.input_ids[-1][pad] == tok.pad_token_id).all()
    assert (blocks.labels[-1][pad] == IGNORE_INDEX).all()
    # Blocks overlap by one token; read back they give the stream, each token once.
    flat = blocks.input_ids[0].tolist()
    for row, mask in zip(blocks.input_ids[1:].tolist(), blocks.attention_mask[1:].tolist(),
                         strict=True):
        flat += [t for t, m in zip(row[1:], mask[1:], strict=True) if m]
    assert flat == stream.input_ids.tolist()
    scored = [t for t in stream.labels.tolist() if t != IGNORE_INDEX]
    assert unpack_scored(blocks) == scored
    assert blocks.num_loss_tokens == len(scored) and len(blocks) == blocks.input_ids.shape[0]
    assert (blocks.labels[:, 0] == IGNORE_INDEX).all()


def test_exact_multiple_has_no_padded_block(tok):
    stream = tokenize_documents([Document(STORIES[0])], tok)
    blocks = pack_tokens(stream, len(stream), tok.pad_token_id)
    assert len(blocks) == 1 and bool(blocks.attention_mask.all())


def test_packed_prompt_completion_masks_prompt_and_padding(tok, tmp_path):
    f = write_jsonl(tmp_path / "qa.jsonl", PAIRS * 4)
    data = prepare_data(config(f, prompt_field="q", completion_field="a", seq_len=16,
                               eval_split=0), tok)
    completions = [t for p in PAIRS * 4 for t in [*encode(tok, p["a"]), tok.eos_token_id]]
    assert unpack_scored(data.train) == completions
    assert data.eval is None and data.eval_documents == 0 and data.train_documents == 12
    assert (data.train.labels != IGNORE_INDEX).any(dim=1).all()  # every block carries loss


def test_order_is_deterministic(tok, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"text": s} for s in STORIES * 5])
    a = prepare_data(config(f, seq_len=16, seed=3), tok)
    b = prepare_data(config(f, seq_len=16, seed=3), tok)
    assert torch.equal(a.train.input_ids, b.train.input_ids)
    assert torch.equal(a.eval.input_ids, b.eval.input_ids)


# ----------------------------------------------------------------------------- eval


def test_eval_split_deterministic_disjoint_and_ordered():
    docs = [Document(f"doc {i}") for i in range(50)]
    train, evals = split_documents(docs, 0.1, seed=7)
    assert len(evals) == 5 and len(train) == 45
    assert {d.text for d in train}.isdisjoint(d.text for d in evals)
    assert split_documents(docs, 0.1, seed=7) == (train, evals)
    assert split_documents(docs, 0.1, seed=8)[1] != evals
    assert evals == sorted(evals, key=lambda d: int(d.text.split()[1]))  # file order kept
    assert len(split_documents(docs[:3], 0.01, seed=0)[1]) == 1  # at least one
    assert len(split_documents(docs[:2], 0.5, seed=0)[0]) == 1  # at least one left to train


def test_prepare_with_split_and_eval_bytes(tok, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"text": f"{s} ({i})"} for i, s in
                                           enumerate(STORIES * 5)])
    data = prepare_data(config(f, seq_len=16, eval_split=0.2, seed=1), tok)
    assert data.train_documents == 16 and data.eval_documents == 4
    _, evals = split_documents(load_documents(str(f)), 0.2, seed=1)
    assert data.eval_bytes == sum(len(d.text.encode()) for d in evals)
    assert data.eval.num_loss_tokens == sum(len(encode(tok, d.text)) + 1 for d in evals)
    assert data.train_tokens == sum(len(encode(tok, f"{s} ({i})")) + 2 for i, s in
                                    enumerate(STORIES * 5)) - sum(
        len(encode(tok, d.text)) + 2 for d in evals)


def test_eval_data_file_and_no_eval(tok, tmp_path):
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": s} for s in STORIES * 3])
    ev = tmp_path / "e.txt"
    ev.write_text("Ünïcode eval story.\n\nSecond one.\n", encoding="utf-8")
    data = prepare_data(config(train, eval_data=str(ev), seq_len=16), tok)
    assert data.train_documents == 12 and data.eval_documents == 2
    assert data.eval_bytes == len("Ünïcode eval story.".encode()) + len("Second one.")
    none = prepare_data(config(train, eval_split=0, seq_len=16), tok)
    assert none.eval is None and none.eval_bytes == 0 and none.train_documents == 12


# ----------------------------------------------------------------------------- errors


def error_of(tmp_path, tok=None, **kw) -> str:
    with pytest.raises(DataError) as info:
        if tok is None:
            load_documents(**kw)
        else:
            prepare_data(config(**kw), tok)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path_and_unsupported_extension(tmp_path):
    msg = error_of(tmp_path, source=str(tmp_path / "nope.jsonl"))
    assert msg.startswith("--data ") and "no such file" in msg
    f = tmp_path / "x.md"
    f.write_text("hi", encoding="utf-8")
    msg = error_of(tmp_path, source=str(f))
    assert "--data" in msg and ".md" in msg and ".parquet" in msg
    msg = error_of(tmp_path, source=str(tmp_path))
    assert "--data" in msg and "x.md" in msg


def test_empty_file_and_no_documents(tmp_path):
    f = tmp_path / "e.txt"
    f.write_text("", encoding="utf-8")
    assert "empty" in error_of(tmp_path, source=str(f))
    f.write_text("\n  \n\n", encoding="utf-8")
    assert "no documents" in error_of(tmp_path, source=str(f))


def test_missing_fields_are_listed(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [{"story": "a", "id": 1}])
    msg = error_of(tmp_path, source=str(f))
    assert msg.startswith("--text-field text") and "story, id" in msg
    msg = error_of(tmp_path, source=str(f), prompt_field="q", completion_field="story")
    assert msg.startswith("--prompt-field q") and "story, id" in msg
    msg = error_of(tmp_path, source=str(f), prompt_field="story", completion_field="a")
    assert msg.startswith("--completion-field a")
    msg = error_of(tmp_path, source=str(f), text_field="id")
    assert msg.startswith("--text-field id") and "int" in msg
    assert "--completion-field" in error_of(tmp_path, source=str(f), prompt_field="story")


def test_prompt_fields_on_plain_text(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("story", encoding="utf-8")
    msg = error_of(tmp_path, source=str(f), prompt_field="q", completion_field="a")
    assert msg.startswith("--prompt-field q") and ".jsonl" in msg


def test_not_utf8_names_file_and_offset(tmp_path):
    f = tmp_path / "latin.txt"
    f.write_bytes(b"caf\xe9 au lait")
    msg = error_of(tmp_path, source=str(f))
    assert "latin.txt" in msg and "UTF-8" in msg and "offset 3" in msg
    g = tmp_path / "latin.jsonl"
    g.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    assert "offset 28" in error_of(tmp_path, source=str(g))


def test_malformed_jsonl_names_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "a"}\n\n{"text": "b"\n{"text": "c"}\n', encoding="utf-8")
    msg = error_of(tmp_path, source=str(f))
    assert "bad.jsonl" in msg and "line 3" in msg and msg.startswith("--data")


def test_eval_flag_named_for_eval_data(tok, tmp_path):
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": s} for s in STORIES])
    msg = error_of(tmp_path, tok, data=train, eval_data=str(tmp_path / "missing.txt"))
    assert msg.startswith("--eval-data")


def test_eval_set_too_small(tok, tmp_path):
    f = write_jsonl(tmp_path / "one.jsonl", [{"text": STORIES[0]}])
    msg = error_of(tmp_path, tok, data=f, eval_split=0.1, seq_len=8)
    assert msg.startswith("--eval-split") and "--eval-data" in msg


def test_too_few_tokens_for_one_block(tok, tmp_path):
    f = write_jsonl(tmp_path / "small.jsonl", [{"text": s} for s in STORIES])
    msg = error_of(tmp_path, tok, data=f, eval_split=0, seq_len=4096)
    tokens = sum(len(encode(tok, s)) + 2 for s in STORIES)
    assert msg.startswith("--seq-len 4096") and f"only {tokens} tokens" in msg
    assert f"--seq-len {1 << (tokens.bit_length() - 1)} or less" in msg


def test_hub_name_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    msg = error_of(tmp_path, source="nobody-genlab/no-such-dataset")
    assert msg.startswith("--data nobody-genlab/no-such-dataset") and "offline" in msg


# ----------------------------------------------------------------------------- real corpus


def test_tinystories_valid_has_1000_documents(data_dir, tok):
    path = data_dir / "tinystories" / "valid.txt"
    docs = load_documents(str(path), doc_separator="<|endoftext|>")
    assert len(docs) == 1000
    assert all(d.text and "<|endoftext|>" not in d.text for d in docs)
    data = prepare_data(config(path, doc_separator="<|endoftext|>", seq_len=128), tok)
    assert data.train_documents == 900 and data.eval_documents == 100
    assert bool(data.train.attention_mask[:-1].all())


def test_a_conversation_row_over_the_row_limit_names_the_row(tmp_path, monkeypatch):
    """A .parquet row is not seen by the line scan: the messages' size is checked per row."""
    import datasets

    from genlab.core.data import sources

    monkeypatch.setattr(sources, "MAX_ROW_BYTES", 100)
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    big = [{"role": "user", "content": "x" * 60}, {"role": "assistant", "content": "y" * 60}]
    path = tmp_path / "chats.parquet"
    datasets.Dataset.from_list([{"messages": chat}, {"messages": big}]).to_parquet(str(path))
    with pytest.raises(sources.DataError, match=r"row 2 of .* 120 characters of messages"):
        sources.load_documents(str(path))
