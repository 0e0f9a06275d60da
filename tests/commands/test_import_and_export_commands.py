"""The import_items and export_dataset commands, on files."""

import io
import json
import re
import sys

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Prompt, Query
from tests.factories import UserFactory, make_answer, make_items, make_study
from tests.labelling import label_preferring_first_response
from tests.qa_feedback import qa_file, qa_record

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


def test_import_items_reads_an_fgrlhf_file_and_export_dataset_writes_it_back(tmp_path, capsys):
    study = make_study(name="QA")
    records = [qa_record(), qa_record(question="Again?", preference=[0, 0, 0, 0, 0, 0])]
    source = tmp_path / "dev.json"
    source.write_bytes(qa_file(*records))
    call_command("import_items", "QA", str(source), "--format", "fgrlhf")
    assert "annotations created: 14" in capsys.readouterr().out
    output = tmp_path / "back.jsonl"
    call_command("export_dataset", "QA", "--format", "fgrlhf", "-o", str(output))
    assert [json.loads(line) for line in output.read_text().splitlines()] == records
    assert Prompt.objects.filter(study=study).count() == 2


def test_import_items_names_the_bad_fgrlhf_record_and_field_and_stores_nothing(tmp_path):
    study = make_study()
    source = tmp_path / "dev.json"
    source.write_bytes(qa_file(qa_record(), qa_record(question="Q?", preference="1,2")))
    with pytest.raises(CommandError, match=r"dev.json: .*record 2 \(array index 1\), field preference"):
        call_command("import_items", str(study.pk), str(source), "--format", "fgrlhf")
    assert not Prompt.objects.exists()


def test_export_dataset_takes_sources_for_trl_and_refuses_them_elsewhere(tmp_path, capsys):
    study = make_study(name="QA")
    source = tmp_path / "dev.json"
    source.write_bytes(qa_file(qa_record()))
    call_command("import_items", "QA", str(source), "--format", "fgrlhf")
    output = tmp_path / "revisions.jsonl"
    call_command("export_dataset", "QA", "--format", "trl", "--sources", "revision", "-o", str(output))
    (row,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert row["source"] == "revision" and row["chosen"][0]["content"] == qa_record()["feedback"]["corrected-prediction"]
    with pytest.raises(CommandError, match="sources applies to the trl and kto formats"):
        call_command("export_dataset", str(study.pk), "--format", "spans", "--sources", "revision")


def test_export_dataset_writes_one_aggregated_row_per_pair(tmp_path):
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    study = make_study(annotators=[ann, ben])
    make_items(study, n_prompts=2)
    for query in study.queries.all():
        make_answer(query, ann, choice="a")
        make_answer(query, ben, choice="a")
    output = tmp_path / "pairs.jsonl"
    call_command("export_dataset", str(study.pk), "--aggregate", "dawid_skene", "-o", str(output))
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(row["aggregate"], row["votes"]) for row in rows] == [("dawid_skene", 2), ("dawid_skene", 2)]
    with pytest.raises(CommandError, match="aggregate applies to the trl format, not ratings"):
        call_command("export_dataset", str(study.pk), "--format", "ratings", "--aggregate", "majority")


class Terminal(io.StringIO):
    """Standard error as a terminal: the commands draw their progress bars only on one."""

    def isatty(self) -> bool:
        return True


def test_import_and_export_draw_a_progress_bar_on_a_terminal_only(tmp_path, monkeypatch):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    records = [{"id": f"r{i}", "prompt": f"Question {i}", "responses": [f"a{i}", f"b{i}"]} for i in range(5)]
    items = write_jsonl(tmp_path / "items.jsonl", records)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    call_command("import_items", str(study.pk), str(items))
    assert re.search(r"storing: 100%.* 5/5", terminal.getvalue())

    label_preferring_first_response(study, annotator)
    call_command("export_dataset", str(study.pk), "-o", str(tmp_path / "out.jsonl"))
    assert re.search(r"exporting: 100%.* 5/5", terminal.getvalue())

    terminal.seek(0)
    terminal.truncate()
    screen = Terminal()  # rows shown on the terminal: a bar would be drawn among them
    monkeypatch.setattr(sys, "stdout", screen)
    call_command("export_dataset", str(study.pk))
    assert len(screen.getvalue().splitlines()) == 5
    assert "exporting" not in terminal.getvalue()

    not_a_terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", not_a_terminal)
    call_command("export_dataset", str(study.pk), "-o", str(tmp_path / "again.jsonl"))
    assert "exporting" not in not_a_terminal.getvalue()  # a log file gets the result, not a bar
    assert "rows: 5" in not_a_terminal.getvalue()


def test_import_items_refuses_a_response_past_the_text_limit_naming_line_and_field(tmp_path):
    study = make_study()
    records = [{"prompt": "ok", "responses": ["a", "b"]}, {"prompt": "long", "responses": ["a", "b" * 100_001]}]
    items = write_jsonl(tmp_path / "items.jsonl", records)
    with pytest.raises(CommandError, match=r"line 2, field responses\[1\] is 100,001 characters long; .* 100,000"):
        call_command("import_items", str(study.pk), str(items))
    assert not Prompt.objects.exists()


def test_export_dataset_snapshot_stores_one_and_prints_its_id_rows_and_checksum(tmp_path, settings, capsys):
    from annotate.models import DatasetExport

    settings.ARTIFACTS_DIR = tmp_path
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=3)
    first, second, third = study.queries.order_by("id")
    make_answer(first, annotator, choice="a")
    make_answer(second, annotator, choice="b")
    make_answer(third, annotator, choice="a")
    study.queries.filter(pk=third.pk).update(round=1)
    call_command("export_dataset", str(study.pk), "--snapshot", "--round", "0", "--file-format", "parquet")
    export = DatasetExport.objects.get()
    assert (export.row_count, export.file_format, export.filters) == (2, "parquet", {"rounds": [0]})
    out = capsys.readouterr().out
    assert f"Snapshot {export.pk} of 'Study': 2 rows, sha256 {export.checksum}, {tmp_path}" in out
    with pytest.raises(CommandError, match="no query in round 5"):
        call_command("export_dataset", str(study.pk), "--snapshot", "--round", "5")
    assert DatasetExport.objects.count() == 1


def test_import_items_reads_trl_parquet_and_a_label_studio_export(tmp_path, capsys):
    from tests.services.test_labelstudio_import import export, pairwise_task
    from tests.services.test_trl_import import STANDARD, parquet

    study = make_study()
    rows = tmp_path / "prefs.parquet"
    rows.write_bytes(parquet([STANDARD]))
    call_command("import_items", str(study.pk), str(rows), "--format", "trl")
    assert "annotations created: 1" in capsys.readouterr().out
    tasks = tmp_path / "ls.json"
    tasks.write_bytes(export(pairwise_task()))
    call_command("import_items", str(make_study(name="LS").pk), str(tasks), "--format", "labelstudio")
    assert "annotations created: 2" in capsys.readouterr().out


def test_import_items_names_the_format_an_argilla_file_sent_as_trl_looks_like(tmp_path):
    from tests.services.test_argilla_import import flat

    study = make_study()
    records = write_jsonl(tmp_path / "argilla.jsonl", [flat()])
    with pytest.raises(CommandError, match="line 1, field chosen: is missing.*format=argilla"):
        call_command("import_items", str(study.pk), str(records), "--format", "trl")
    assert not Prompt.objects.exists()
