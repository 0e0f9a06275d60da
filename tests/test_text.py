"""Finding the NUL characters that PostgreSQL's text and JSON columns cannot hold."""

import pytest

from annotate.errors import InvalidInput
from annotate.text import nul_at, refuse_unstorable


def test_the_first_nul_is_found_at_its_path_in_nested_values_and_keys():
    assert nul_at("plain text") is None
    assert nul_at({"a": [1, "ok", {"b": "x\u0000"}]}) == "a[2].b"
    assert nul_at({"bad\u0000key": 1}) == "bad\u0000key"
    assert nul_at(["ok", "no\u0000"]) == "[1]"
    assert nul_at({"n": 3, "f": 1.5, "t": True, "none": None}) is None


def test_refusing_names_the_value_and_the_place_inside_it():
    with pytest.raises(InvalidInput) as refused:
        refuse_unstorable({"loss": "bt\u0000"}, "config")
    assert refused.value.field == "config.loss"
    with pytest.raises(InvalidInput) as refused:
        refuse_unstorable(["a", "\u0000"], "ranking")
    assert refused.value.field == "ranking[1]"
    refuse_unstorable({"fine": ["text"]}, "config")  # nothing to refuse


def test_a_text_past_the_limit_is_found_at_its_path_keys_included(settings):
    from annotate.text import text_problem

    settings.PREFLAB_MAX_TEXT_CHARS = 5
    assert text_problem({"a": ["12345"]}, "x") is None
    assert text_problem({"a": ["ok", "123456"]}, "x") == (
        "x.a[1]",
        "x.a[1] is 6 characters long; a text may hold at most 5 (PREFLAB_MAX_TEXT_CHARS).",
    )
    assert text_problem({"long key": 1})[0] == "long key"
    with pytest.raises(InvalidInput) as refused:
        refuse_unstorable({"note": "x" * 6}, "spans[0]")
    assert refused.value.field == "spans[0].note"
