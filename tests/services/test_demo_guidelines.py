"""The demo's guidelines name the workspace's keys for what they do."""

import re

from annotate.services.demo import DEMO_GUIDELINES
from annotate.views.workspace import CHOICES, STRENGTHS


def test_the_demo_guidelines_name_each_key_as_the_workspace_binds_it():
    said = DEMO_GUIDELINES.lower()
    for _, label, key in CHOICES + STRENGTHS:
        assert f"{key} = {label.lower()}" in said, key
    # Keys 1-4 choose A, B, tie or both bad: no numbered list or scale may use them for anything else.
    assert not re.search(r"^\s*[1-4][.)] ", DEMO_GUIDELINES, re.MULTILINE)
    assert not re.search(r"\b[1-4] = (slightly|clearly|much)", said)
