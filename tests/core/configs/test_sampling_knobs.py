"""The sampling knobs' own validation and text forms (logit bias, breakers, orders)."""

from __future__ import annotations

import json
import math

import pytest

from genlab.core.configs import ConfigError, SamplingParams
from genlab.core.configs.sampler_text import (
    format_bias,
    normalize_breakers,
    normalize_logit_bias,
    parse_sampler_order,
    split_bias_text,
)


def test_logit_bias_forms_normalise_to_pairs():
    expected = ((42, -5.0), (" the", -math.inf), ("42", 2.0), ("a=b", 1.0))
    assert normalize_logit_bias(["42=-5", '" the"=-inf', '"42"=2', "a=b=1"]) == expected
    assert normalize_logit_bias({42: -5, " the": float("-inf"), "42": 2, "a=b": 1}) == expected
    assert normalize_logit_bias('42=-5, " the"=-inf, "42"=2, "a=b"=1') == expected
    assert normalize_logit_bias([[42, -5], [" the", "-inf"], ["42", 2], ["a=b", 1]]) \
        == expected  # in pairs (JSON) a string is a text, even "42"
    assert normalize_logit_bias(["7=1", "7=3"]) == ((7, 3.0),)  # the last one wins
    assert split_bias_text('"a,b"=1, c=2') == ['"a,b"=1', "c=2"]
    assert format_bias(expected) == '42=-5, " the"=-inf, "42"=2, "a=b"=1'


@pytest.mark.parametrize("bad, words", [
    (["the"], "has no TOKEN="), (["x=abc"], "'abc' is not a number"),
    (["x=inf"], "-inf bans"), (["x=nan"], "is not allowed"), (['""=1'], "empty text"),
    ([[-3, 1]], "negative"),
])
def test_bad_logit_bias_is_one_clear_config_error(bad, words):
    with pytest.raises(ConfigError, match="logit_bias") as err:
        SamplingParams(logit_bias=bad)
    assert words in str(err.value)


def test_params_round_trip_through_json_with_a_ban():
    p = SamplingParams(logit_bias=["5=-inf", "hi=1.5", '"7"=2'], dry_sequence_breakers='"\\n", ":"',
                       sampler_order="llama.cpp", mirostat=2)
    data = json.loads(json.dumps(p.to_dict(), allow_nan=False))
    assert data["logit_bias"] == [[5, "-inf"], ["hi", 1.5], ["7", 2.0]]
    assert SamplingParams(**data) == p


def test_breakers_and_orders():
    assert normalize_breakers('"\\n", ":", "\\"", "*"') == ("\n", ":", '"', "*")
    assert normalize_breakers('["a", "a"]') == ("a",)
    assert normalize_breakers("none") == ()
    with pytest.raises(ValueError):
        normalize_breakers("\\n, :")
    assert parse_sampler_order("llama.cpp")[-2:] == ("temperature", "mirostat")
    with pytest.raises(ValueError, match="named twice"):
        parse_sampler_order("top_k,top_k")
    with pytest.raises(ValueError, match="'nope' is not one"):
        parse_sampler_order("top_k,nope")


@pytest.mark.parametrize("knobs, field", [
    (dict(typical_p=0), "typical_p"), (dict(epsilon_cutoff=1), "epsilon_cutoff"),
    (dict(presence_penalty=2.5), "presence_penalty"), (dict(mirostat=3), "mirostat"),
    (dict(xtc_threshold=0.6), "xtc_threshold"), (dict(dry_base=0.5), "dry_base"),
    (dict(min_keep=0), "min_keep"), (dict(min_tokens=65), "min_tokens"),
    (dict(top_k=5, sampler_order="temperature"), "sampler_order"),
    (dict(mirostat_tau=0), "mirostat_tau"), (dict(dynatemp_exponent=0), "dynatemp_exponent"),
])
def test_out_of_range_knobs_name_their_field(knobs, field):
    with pytest.raises(ConfigError) as err:
        SamplingParams(**knobs)
    assert err.value.field == field


def test_stages_used_follow_the_switches_and_greedy_skips_warpers():
    p = SamplingParams(dry_multiplier=0.8, xtc_probability=0.5, mirostat=2, logit_bias=["1=1"])
    assert set(p.stages_used()) == {"dry", "xtc", "mirostat", "logit_bias"}
    greedy = SamplingParams(temperature=0, xtc_probability=0.5, presence_penalty=1.0)
    assert greedy.stages_used() == ("presence_frequency",)
