"""A large import is stored in chunks, with progress, and stays all or nothing."""

import pytest

from annotate.errors import InvalidInput
from annotate.models import Prompt, Query, QueryResponse, Response
from annotate.services.items import items_import
from tests.factories import jsonl, make_study

pytestmark = pytest.mark.django_db


def records(n: int, responses: int = 3, prompt: str = "Question") -> list[dict]:
    return [
        {"id": f"r{i}", "prompt": f"{prompt} {i}", "responses": [f"answer {j} to {i}" for j in range(responses)]}
        for i in range(n)
    ]


def stored(study) -> dict:
    """What an import left, by external id, so that two studies' imports can be compared."""
    return {
        "prompts": sorted(Prompt.objects.filter(study=study).values_list("external_id", "messages")),
        "responses": sorted(Response.objects.filter(prompt__study=study).values_list("prompt__external_id", "index", "text")),
        "queries": sorted(
            (q.prompt.external_id, tuple(q.query_responses.order_by("position").values_list("response__text", flat=True)))
            for q in Query.objects.filter(study=study).select_related("prompt")
        ),
    }


def test_a_chunked_import_reports_progress_and_stores_what_one_chunk_would():
    chunked, whole = make_study(name="chunked"), make_study(name="whole")
    calls = []
    result = items_import(study=chunked, lines=jsonl(records(5)), chunk_size=2, progress=lambda *a: calls.append(a))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert result.as_dict() == items_import(study=whole, lines=jsonl(records(5))).as_dict()
    assert result.as_dict() == {"prompts_created": 5, "prompts_unchanged": 0, "responses_created": 15, "queries_created": 15}
    assert stored(chunked) == stored(whole)

    # Again, with a fourth response for two prompts: only what is new, counted across chunks.
    grown = records(5)
    for record in grown[1:3]:
        record["responses"].append("a fourth answer")
    again = items_import(study=chunked, lines=jsonl(grown), chunk_size=2)
    assert again.as_dict() == {"prompts_created": 0, "prompts_unchanged": 3, "responses_created": 2, "queries_created": 6}


def test_a_conflict_in_a_later_chunk_stores_nothing_from_the_earlier_ones():
    study = make_study()
    items_import(study=study, lines=jsonl(records(1, prompt="Other question")[:1]))  # r0, with its own prompt
    before = stored(study)
    later = records(5)[1:] + records(1)  # r0 comes last, with a different prompt text
    with pytest.raises(InvalidInput, match="line 5, field prompt: id 'r0' was imported before with a different prompt"):
        items_import(study=study, lines=jsonl(later), chunk_size=2)
    assert stored(study) == before
    assert QueryResponse.objects.filter(query__study=study).count() == 6  # r0: three pairs


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="chunk_size must be at least 1, not 0"):
        items_import(study=make_study(), lines=jsonl(records(1)), chunk_size=0)
