"""Cutting back a response that the token limit stopped mid-sentence."""

import pytest

from learning.generate import trim_unfinished


@pytest.mark.parametrize(
    ("text", "trimmed"),
    [
        # Back to the last whole sentence, with its closing quote or bracket.
        (
            "First point. Second point is longer than that. And a third that never",
            "First point. Second point is longer than that.",
        ),
        ('He said "stop." Then he', 'He said "stop."'),
        ("Is it? (Yes, it is.) But then", "Is it? (Yes, it is.)"),
        # A decimal point ends no sentence.
        (
            "Pi is about 3.14159 and e is about 2.71828 when rounded to",
            "Pi is about 3.14159 and e is about 2.71828 when rounded …",
        ),
        # Too little would be left: the partial word goes, and an ellipsis says where it stopped.
        (
            "Yes. Because the long second sentence explains in great detail how the thing",
            "Yes. Because the long second sentence explains in great detail how the …",
        ),
        ("It works. It is fast, and then the model kept going with", "It works. It is fast, and then the model kept going …"),
        ("Supercalifragilistic", "Supercalifragilistic …"),
        ("The steps are: first,", "The steps are …"),
        ("  ", ""),
        # A code block the cut left open is closed, so the rest of the page is not code.
        ("Like this:\n\n```python\nx = 1.\ny = [", "Like this:\n\n```python\nx = 1.\n```"),
    ],
)
def test_trim_unfinished_ends_on_a_whole_sentence_or_an_ellipsis(text, trimmed):
    assert trim_unfinished(text) == trimmed
