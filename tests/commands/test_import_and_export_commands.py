"""The import_items and export_dataset commands, on files."""

import json

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Prompt, Query
from tests.factories import UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_import_items_takes_a_study_by_name_and_makes_every_pair_a_query(tmp_path, capsys):
    study = make_study(name="Summaries")
    items = write_jsonl(tmp_path / "items.jsonl", [{"id": "x", "prompt": "Sum up", "responses": ["a", "b", "c", "d"]}])
    call_command("import_items", "Summaries", str(items))
    assert Query.objects.filter(study=study).count() == 6
    assert "queries created: 6" in capsys.readouterr().out


def test_import_items_reports_the_bad_line_and_stores_nothing(tmp_path):
    study = make_study()
    items = write_jsonl(
        tmp_path / "items.jsonl", [{"prompt": "ok", "responses": ["a", "b"]}, {"prompt": "", "responses": ["a", "b"]}]
    )
    with pytest.raises(CommandError, match="line 2, field prompt"):
        call_command("import_items", str(study.pk), str(items))
    assert not Prompt.objects.exists()


def test_import_items_names_an_unknown_study(tmp_path):
    items = write_jsonl(tmp_path / "items.jsonl", [{"prompt": "ok", "responses": ["a", "b"]}])
    with pytest.raises(CommandError, match="No study with id or name 'nope'"):
        call_command("import_items", "nope", str(items))


def test_export_dataset_writes_trl_rows_to_a_file_and_counts_them(tmp_path, capsys):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=5)
    label_preferring_first_response(study, annotator)
    output = tmp_path / "out.jsonl"
    call_command("export_dataset", str(study.pk), "--format", "trl", "-o", str(output))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 5
    assert all(row["chosen"][0]["content"].startswith("Answer 0") for row in rows)
    assert "rows: 5" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl.partial").exists()
