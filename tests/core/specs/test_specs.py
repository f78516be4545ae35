"""Spec parsing: crossed/paired expansion, search spaces, variables, overrides, one-line errors.

No model is loaded here: every test parses mappings or small files written to tmp.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from genlab.core.specs.common import SpecError, parse_yaml
from genlab.core.specs.compare import CompareSpec
from genlab.core.specs.loader import load_spec
from genlab.core.specs.sweep import SweepSpec

FACTS = Path(__file__).resolve().parents[3] / "demo" / "facts"


def compare_spec(**extra) -> dict:
    return {"kind": "compare", "prompts": ["a", "b"], **extra}


def sweep_spec(**extra) -> dict:
    data = {"kind": "sweep", "base": {"data": str(FACTS / "train.jsonl")},
            "search": {"lr": [1e-4, 1e-3]}, "method": "grid"}
    data.update(extra)
    return data


def error_of(spec, **kwargs) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(spec, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# ----------------------------------------------------------------------------- compare


def test_crossed_axes_give_the_cartesian_product_in_spec_order():
    spec = load_spec(compare_spec(axes={"temperature": [0.5, 1.0], "top_k": [0, 40, 80]}))
    assert isinstance(spec, CompareSpec)
    cells = spec.cells()
    got = [(c.params.temperature, c.params.top_k) for c in cells]
    assert got == [(0.5, 0), (0.5, 40), (0.5, 80), (1.0, 0), (1.0, 40), (1.0, 80)]
    assert [c.index for c in cells] == list(range(6))
    assert cells[1].label == "T=0.5 k=40"
    assert len({c.key for c in cells}) == 6


def test_axis_order_follows_the_spec_not_a_fixed_field_order():
    spec = load_spec(compare_spec(axes={"top_k": [0, 40], "temperature": [0.5, 1.0]}))
    got = [(c.params.top_k, c.params.temperature) for c in spec.cells()]
    assert got == [(0, 0.5), (0, 1.0), (40, 0.5), (40, 1.0)]


def test_paired_axes_are_zipped_then_crossed_with_the_rest():
    spec = load_spec(compare_spec(
        axes={"temperature": [0.7, 1.0]},
        paired=[{"top_p": [1.0, 0.9, 0.8], "min_p": [0.0, 0.05, 0.1]}]))
    got = [(c.params.temperature, c.params.top_p, c.params.min_p) for c in spec.cells()]
    assert got == [(0.7, 1.0, 0.0), (0.7, 0.9, 0.05), (0.7, 0.8, 0.1),
                   (1.0, 1.0, 0.0), (1.0, 0.9, 0.05), (1.0, 0.8, 0.1)]


def test_base_settings_apply_to_every_cell_and_adapters_become_an_axis():
    spec = load_spec(compare_spec(base={"max_new_tokens": 7, "stop": "\n"},
                                  adapters={"kind": "x/adapter"},
                                  axes={"temperature": [0.0, 1.0]}))
    cells = spec.cells()
    assert [(c.params.temperature, c.adapter) for c in cells] == [
        (0.0, None), (0.0, "kind"), (1.0, None), (1.0, "kind")]
    assert all(c.params.max_new_tokens == 7 and c.params.stop == ("\n",) for c in cells)
    assert cells[1].label == "kind T=0"


def test_a_paired_column_may_repeat_values_as_long_as_each_setting_differs():
    spec = load_spec(compare_spec(paired=[{"top_k": [0, 40, 0], "min_p": [0.0, 0.0, 0.1]}]))
    assert [c.label for c in spec.cells()] == ["k=0 min-p=0", "k=40 min-p=0", "k=0 min-p=0.1"]


def test_every_sampling_knob_is_a_base_key_and_an_axis():
    spec = load_spec(compare_spec(
        base={"logit_bias": {" the": float("-inf"), 42: 2}, "dry_sequence_breakers": ["\n"],
              "min_keep": 2, "typical_p": 0.9},
        axes={"sampler_order": ["transformers", "llama.cpp"], "dry_multiplier": [0, 0.8]}))
    cells = spec.cells()
    assert len(cells) == 4
    assert cells[0].label == "order=transformers dry=0" and cells[3].label == \
        "order=llama.cpp dry=0.8"
    for cell in cells:
        assert cell.params.logit_bias == ((" the", float("-inf")), (42, 2.0))
        assert cell.params.dry_sequence_breakers == ("\n",) and cell.params.typical_p == 0.9
    assert spec.to_dict()["base"]["logit_bias"] == [[" the", "-inf"], [42, 2.0]]


def test_a_sampler_order_may_be_a_yaml_list_of_stages():
    orders = ["transformers", ["top_p", "temperature"]]
    spec = load_spec(compare_spec(base={"top_p": 0.9}, axes={"sampler_order": orders}))
    cells = spec.cells()
    assert [c.params.sampler_order for c in cells] == ["transformers", "top_p,temperature"]
    assert [c.label for c in cells] == ["order=transformers", "order=top_p,temperature"]


def test_no_axes_is_one_cell_and_prompts_can_come_from_a_file(tmp_path):
    (tmp_path / "p.txt").write_text("one\n\ntwo\n", encoding="utf-8")
    spec = load_spec(compare_spec(prompts=str(tmp_path / "p.txt")))
    assert spec.prompts == ("one", "two")
    assert len(spec.cells()) == 1 and spec.rows_per_cell == 2


@pytest.mark.parametrize("extra, key, words", [
    ({"axes": {"temperature": []}}, "axes.temperature", "at least one value"),
    ({"axes": {"temperature": [0.5, -1]}}, "axes.temperature[1]", "got -1"),
    ({"axes": {"top_k": [1.5]}}, "axes.top_k[0]", "integer"),
    ({"axes": {"temprature": [1]}}, "axes.temprature", "did you mean 'temperature'"),
    ({"paired": [{"top_p": [1.0, 0.9], "min_p": [0.0]}]}, "paired[0].min_p", "equal lengths"),
    ({"axes": {"top_p": [1.0]}, "paired": [{"top_p": [1.0], "min_p": [0.0]}]},
     "paired[0].top_p", "already an axis"),
    ({"axes": {"adapter": ["base", "nope"]}}, "axes.adapter[1]", "adapter name"),
    ({"samples": 0}, "samples", ">= 1"),
    ({"base": {"top_p": 2}}, "base.top_p", "got 2"),
    ({"bogus": 1}, "bogus", "unknown key"),
    ({"paired": [{"top_k": [0, 0], "min_p": [0.1, 0.1]}]}, "paired[0]", "combination twice"),
    ({"axes": {"top_k": [0, 0]}}, "axes.top_k", "lists a value twice"),
    ({"base": {"dry_multiplyer": 1}}, "base.dry_multiplyer", "did you mean 'dry_multiplier'"),
    ({"base": {"mirostat": 3}}, "base.mirostat", "[0, 2]"),
    ({"base": {"logit_bias": {"x": "high"}}}, "base.logit_bias", "not a number"),
    ({"axes": {"sampler_order": ["transformers", "nope"]}}, "axes.sampler_order[1]", "nope"),
    ({"axes": {"xtc_threshold": [0.1, 0.9]}}, "axes.xtc_threshold[1]", "(0, 0.5]"),
])
def test_bad_compare_specs_name_the_key_path(extra, key, words):
    err = error_of(compare_spec(**extra))
    assert err.key == key
    assert words in str(err)


# ----------------------------------------------------------------------------- sweep


def test_sweep_search_space_grid_and_trial_configs():
    spec = load_spec(sweep_spec(search={
        "lr": {"low": 1e-4, "high": 1e-2, "log": True, "num": 3},
        "rank": [4, 8],
        "setup": {"choices": [{"label": "sgd", "optimizer": "sgd", "momentum": 0.9},
                              {"optimizer": "adamw"}]},
    }))
    assert isinstance(spec, SweepSpec)
    grid = spec.search.grid()
    assert len(grid) == spec.trials == 12
    assert [p["lr"] for p in grid[::4]] == [1e-4, 1e-3, 1e-2]
    assert grid[0] == {"lr": 1e-4, "rank": 4, "setup": "sgd"}
    assert grid[1]["setup"] == "optimizer=adamw"
    config = spec.train_config(grid[0], "m", "t")
    assert (config.lr, config.rank, config.optimizer, config.momentum) == (1e-4, 4, "sgd", 0.9)
    assert config.save_every == 10**9  # sweeps write no periodic checkpoints


def test_integer_fields_get_integer_ranges_and_model_shape_builds_a_shape():
    spec = load_spec(sweep_spec(
        base={"data": str(FACTS / "train.jsonl"), "method": "full", "seq_len": 32,
              "model_shape": {"heads": 2, "kv_heads": 1, "context": 64}},
        search={"model_shape.layers": {"low": 1, "high": 3, "num": 3},
                "batch_size": {"low": 2, "high": 8, "log": True, "num": 3}}))
    dims = {d.name: d for d in spec.search.dims}
    assert dims["model_shape.layers"].kind == "int" and dims["batch_size"].kind == "int"
    assert dims["batch_size"].grid_values() == [2, 4, 8]
    _, shape = spec.trial_fields({"model_shape.layers": 2, "batch_size": 4})
    assert shape == {"heads": 2, "kv_heads": 1, "context": 64, "layers": 2}


def test_random_and_bayes_need_a_budget_and_grid_budget_is_capped():
    assert error_of(sweep_spec(method="random")).key == "trials"
    assert load_spec(sweep_spec(method="bayes", trials=5)).trials == 5
    err = error_of(sweep_spec(trials=3))
    assert err.key == "trials" and "at most the grid's 2 points" in str(err)
    assert load_spec(sweep_spec(trials=1)).trials == 1


@pytest.mark.parametrize("extra, key, words", [
    ({"search": {"lr": {"low": "abc", "high": 1}}}, "search.lr.low",
     "expected a number, got 'abc'"),
    ({"search": {"lr": {"low": 0.1, "high": 0.01}}, "method": "random", "trials": 2},
     "search.lr.high", "above low"),
    ({"search": {"lr": {"low": 0.0, "high": 0.1, "log": True}}, "method": "random", "trials": 2},
     "search.lr.low", "> 0 for a log range"),
    ({"search": {"lr": {"low": 1e-4, "high": 1e-2}}}, "search.lr.num", "method: grid"),
    ({"search": {"lr": [1e-3, -1.0]}}, "search.lr.choices[1]", "got -1.0"),
    ({"search": {"lrr": [1e-3]}}, "search.lrr", "did you mean 'lr'"),
    ({"search": {"optimizer": {"low": 1, "high": 2}}}, "search.optimizer", "not numeric"),
    ({"search": {}}, "search", "at least one dimension"),
    ({"search": {"s": {"choices": [{"optimizer": "sgd", "momentum": 2.0}]}}},
     "search.s.choices[0].momentum", "in [0, 1)"),
    ({"method": "bayesian"}, "method", "one of grid, random, bayes"),
    ({"objective": "loss"}, "objective", "one of"),
    ({"pruner": {"type": "median", "warmup": 3}}, "pruner.warmup", "did you mean 'warmup_steps'"),
    ({"base": {"data": "missing/file.jsonl"}}, "base.data", "no such file"),
    ({"base": {"data": str(FACTS / "train.jsonl"), "lr": "fast"}}, "base.lr", "got 'fast'"),
    ({"base": {"data": str(FACTS / "train.jsonl"), "lrr": 1}}, "base.lrr", "did you mean 'lr'"),
    ({"base": {"data": str(FACTS / "train.jsonl"), "model": "x"}}, "base.model", "top-level"),
    ({"base": {"data": str(FACTS / "train.jsonl"), "model_shape": {"layers": 2}}},
     "base.method", "method: full"),
    ({"base": {"data": str(FACTS / "train.jsonl"), "eval_split": 0.0}}, "objective",
     "needs eval data"),
    ({"retrain_overrides": {"max_steps": 0}}, "retrain_overrides.max_steps", ">= 1"),
])
def test_bad_sweep_specs_name_the_key_path(extra, key, words):
    err = error_of(sweep_spec(**extra))
    assert err.key == key, str(err)
    assert words in str(err)


# ----------------------------------------------------------------------------- files


def test_file_errors_name_the_file_and_yaml_1_2_floats(tmp_path):
    path = tmp_path / "lr.yaml"
    path.write_text("kind: sweep\nbase: {data: x}\nsearch:\n  lr: {low: abc, high: 1e-1}\n",
                    encoding="utf-8")
    assert str(error_of(path)) == f"{path}: search.lr.low: expected a number, got 'abc'"
    assert parse_yaml("a: 1e-4\nb: -2E+3\nc: '1e-4'\n", "x") == {"a": 1e-4, "b": -2e3,
                                                                  "c": "1e-4"}
    path.write_text("kind: compare\nprompts: [a]\nprompts: [b]\n", encoding="utf-8")
    assert "duplicate key 'prompts'" in str(error_of(path))
    path.write_text("kind: compare\nprompts: [a\n", encoding="utf-8")
    assert "not valid YAML" in str(error_of(path))
    assert "no such spec file" in str(error_of(tmp_path / "nope.yaml"))


def test_vars_spec_dir_and_overrides(tmp_path):
    (tmp_path / "p.txt").write_text("hello\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text("kind: compare\nvars: {n: 3, file: '${spec_dir}/p.txt'}\n"
                    "prompts: ${file}\nsamples: ${n}\n", encoding="utf-8")
    spec = load_spec(path)
    assert spec.prompts == ("hello",) and spec.samples == 3
    spec = load_spec(path, overrides=["samples=2", "base.temperature=0.5", "vars.n=9"],
                     model="m")
    assert (spec.samples, spec.base.temperature, spec.model) == (2, 0.5, "m")
    assert "unknown variable ${nope}" in str(error_of(compare_spec(prompts=["${nope}"])))
    assert "KEY.PATH=VALUE" in str(error_of(path, overrides=["samples"]))


def test_kind_must_match_the_command():
    assert "run it with genlab sweep" in str(error_of(sweep_spec(), expect="compare"))
    assert isinstance(load_spec({"prompts": ["x"]}, expect="compare"), CompareSpec)
    assert isinstance(load_spec({k: v for k, v in sweep_spec().items() if k != "kind"}),
                      SweepSpec)
