"""Finding the NUL characters that PostgreSQL's text and JSON columns cannot hold."""

import pytest

from annotate.errors import InvalidInput
from annotate.text import nul_at, refuse_nul


def test_the_first_nul_is_found_at_its_path_in_nested_values_and_keys():
    assert nul_at("plain text") is None
    assert nul_at({"a": [1, "ok", {"b": "x\u0000"}]}) == "a[2].b"
    assert nul_at({"bad\u0000key": 1}) == "bad\u0000key"
    assert nul_at(["ok", "no\u0000"]) == "[1]"
    assert nul_at({"n": 3, "f": 1.5, "t": True, "none": None}) is None


def test_refusing_names_the_value_and_the_place_inside_it():
    with pytest.raises(InvalidInput) as refused:
        refuse_nul({"loss": "bt\u0000"}, "config")
    assert refused.value.field == "config.loss"
    with pytest.raises(InvalidInput) as refused:
        refuse_nul(["a", "\u0000"], "ranking")
    assert refused.value.field == "ranking[1]"
    refuse_nul({"fine": ["text"]}, "config")  # nothing to refuse
