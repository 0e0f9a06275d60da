"""A large import goes in by bulk writes, one per table and chunk, and keeps its rules: in order, idempotent, all or nothing."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.errors import InvalidInput
from annotate.models import Prompt, Query, QueryResponse, Response
from annotate.services.items import IMPORT_CHUNK, items_import
from tests.factories import jsonl, make_study

pytestmark = pytest.mark.django_db

LARGE = 2 * IMPORT_CHUNK + 500  # three chunks, the last one partial
READ = re.compile(r'(?:FROM|JOIN) "annotate_(prompt|response|query|queryresponse)"')


def records(n: int, start: int = 0) -> list[dict]:
    return [
        {"id": f"r{i}", "prompt": f"Question {i}?", "responses": [f"First answer to {i}.", f"Second\tanswer\nto {i}."]}
        for i in range(start, start + n)
    ]


def table_rows(study) -> dict:
    """Every row an import makes in the study, ids included, to tell whether anything changed."""
    return {
        "prompts": list(Prompt.objects.filter(study=study).order_by("id").values_list("id", "external_id", "messages")),
        "responses": list(Response.objects.filter(prompt__study=study).order_by("id").values_list("id", "prompt_id", "index")),
        "queries": list(Query.objects.filter(study=study).order_by("id").values_list("id", "prompt_id", "key", "asks")),
        "positions": list(
            QueryResponse.objects.filter(query__study=study).order_by("id").values_list("query_id", "response_id", "position")
        ),
    }


def test_a_large_import_stores_every_record_in_file_order_across_chunks():
    study = make_study()
    result = items_import(study=study, lines=jsonl(records(LARGE)))
    assert result.as_dict() == {
        "prompts_created": LARGE,
        "prompts_unchanged": 0,
        "responses_created": 2 * LARGE,
        "queries_created": LARGE,
    }
    prompts = list(Prompt.objects.filter(study=study).order_by("id"))
    assert [p.external_id for p in prompts] == [f"r{i}" for i in range(LARGE)]
    assert prompts[-1].messages == [{"role": "user", "content": f"Question {LARGE - 1}?"}]
    texts = list(Response.objects.filter(prompt=prompts[-1]).order_by("index").values_list("index", "text"))
    assert texts == [(0, f"First answer to {LARGE - 1}."), (1, f"Second\tanswer\nto {LARGE - 1}.")]
    # Each query shows its own prompt's two responses, in index order, and queries follow the file.
    queries = list(Query.objects.filter(study=study).order_by("id").select_related("prompt"))
    assert [q.prompt.external_id for q in queries] == [f"r{i}" for i in range(LARGE)]
    for query in (queries[0], queries[IMPORT_CHUNK], queries[-1]):
        shown = [r.text for r in query.ordered_responses()]
        assert shown == [r.text for r in Response.objects.filter(prompt=query.prompt).order_by("index")]
        assert query.key == "pairwise:" + "-".join(str(r.pk) for r in query.ordered_responses())
        assert (query.asks, query.label_count, query.round, query.strategy) == (["pairwise"], 0, 0, "import")


def test_re_importing_a_large_file_changes_nothing_and_a_grown_one_adds_only_what_is_new():
    study = make_study()
    items_import(study=study, lines=jsonl(records(LARGE)))
    before = table_rows(study)
    again = items_import(study=study, lines=jsonl(records(LARGE)))
    assert again.as_dict() == {"prompts_created": 0, "prompts_unchanged": LARGE, "responses_created": 0, "queries_created": 0}
    assert table_rows(study) == before

    # The same file, one prompt with a third response, and new prompts after it: the chunks mix old and new.
    grown = records(LARGE + 10)
    grown[IMPORT_CHUNK]["responses"].append("A third answer.")
    result = items_import(study=study, lines=jsonl(grown))
    assert result.as_dict() == {
        "prompts_created": 10,
        "prompts_unchanged": LARGE - 1,
        "responses_created": 21,
        "queries_created": 12,
    }
    after = table_rows(study)
    assert after["prompts"][:LARGE] == before["prompts"] and after["responses"][: 2 * LARGE] == before["responses"]
    third = Response.objects.get(prompt__study=study, text="A third answer.")
    assert third.index == 2 and third.prompt.external_id == f"r{IMPORT_CHUNK}"
    assert Query.objects.filter(study=study, prompt=third.prompt).count() == 3


def test_a_bad_last_line_of_a_large_file_stores_nothing():
    study = make_study()
    lines = jsonl(records(LARGE)) + [json.dumps({"id": "last", "prompt": "Fine?", "responses": ["Only one."]})]
    with pytest.raises(InvalidInput, match=f"Nothing was imported. line {LARGE + 1}, field responses: .* at least 2"):
        items_import(study=study, lines=lines)
    assert table_rows(study) == {"prompts": [], "responses": [], "queries": [], "positions": []}


def test_a_conflict_found_in_the_last_chunk_stores_nothing_from_the_chunks_before():
    study = make_study()
    items_import(study=study, lines=jsonl([{"id": "r0", "prompt": "Another question?", "responses": ["a", "b"]}]))
    before = table_rows(study)
    with pytest.raises(InvalidInput, match=f"line {LARGE}, field prompt: id 'r0' was imported before"):
        items_import(study=study, lines=jsonl(records(LARGE - 1, start=1) + records(1)))
    assert table_rows(study) == before


def test_a_new_file_is_written_without_reading_back_what_was_written():
    """Only the prompts table is read, for ids imported before; responses and queries are written, never read."""
    study = make_study()
    with CaptureQueriesContext(connection) as captured:
        items_import(study=study, lines=jsonl(records(LARGE)))
    # (PostgreSQL also counts the study's queries once, to decide on ANALYZE: see annotate/rows.py.)
    tables_read = [READ.findall(q["sql"]) for q in captured.captured_queries if "COUNT(*)" not in q["sql"]]
    assert [tables for tables in tables_read if tables] == [["prompt"]] * 3  # one read per chunk


def test_a_nul_is_found_wherever_it_is_escaped_and_an_escaped_backslash_is_not_one():
    study = make_study()
    hidden = {"id": "n", "prompt": "Fine?", "responses": ["a", "b"], "metadata": {"source\u0000": 1}}
    with pytest.raises(InvalidInput, match=r"line 1, field metadata.source\x00 contains a NUL character"):
        items_import(study=study, lines=jsonl([hidden]))
    lookalike = {"id": "b", "prompt": "What does \\u0000 mean?", "responses": ["a", "b"]}
    items_import(study=study, lines=jsonl([lookalike]))
    assert Prompt.objects.get(study=study).messages[0]["content"] == "What does \\u0000 mean?"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks; CI runs it there")
def test_two_imports_of_one_file_into_one_study_at_once_store_it_once():
    from tests.services.test_concurrent_claims import race

    study = make_study()
    lines = jsonl(records(300))
    results = race([lambda: items_import(study=study, lines=lines) for _ in range(2)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted((r.prompts_created, r.prompts_unchanged) for r in results) == [(0, 300), (300, 0)]
    assert Query.objects.filter(study=study).count() == 300
