"""The import endpoint's labelled formats: trl (JSON lines or Parquet), labelstudio and argilla."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotate.models import Annotation, PairwiseChoice, Prompt
from tests.api.test_pairwise_loop_api import client_for
from tests.factories import UserFactory, make_study
from tests.services.test_argilla_import import flat
from tests.services.test_labelstudio_import import export, pairwise_task
from tests.services.test_trl_import import STANDARD, jsonl, parquet

pytestmark = pytest.mark.django_db


def manager_and_study():
    manager = UserFactory(is_staff=True)
    return manager, make_study(manager=manager)


def test_trl_rows_as_json_lines_are_imported_once_then_answered_200():
    manager, study = manager_and_study()
    url = f"/api/v1/studies/{study.pk}/import/?format=trl"
    reply = client_for(manager).post(url, jsonl(STANDARD), content_type="application/x-ndjson")
    assert reply.status_code == 201, reply.json()
    assert reply.json()["annotations_created"] == 1
    again = client_for(manager).post(url, jsonl(STANDARD), content_type="application/x-ndjson")
    assert again.status_code == 200 and again.json()["prompts_unchanged"] == 1


def test_a_parquet_file_uploads_as_multipart_and_as_the_body():
    manager, study = manager_and_study()
    url = f"/api/v1/studies/{study.pk}/import/?format=trl"
    upload = SimpleUploadedFile("prefs.parquet", parquet([STANDARD]))
    reply = client_for(manager).post(url, {"file": upload}, format="multipart")
    assert reply.status_code == 201, reply.json()
    other = {"prompt": "Q", "chosen": "yes", "rejected": "no"}
    reply = client_for(manager).post(url, parquet([other]), content_type="application/vnd.apache.parquet")
    assert reply.status_code == 201, reply.json()
    assert PairwiseChoice.objects.count() == 2


def test_label_studio_and_argilla_files_are_imported_with_their_labels():
    manager, study = manager_and_study()
    base = f"/api/v1/studies/{study.pk}/import/"
    reply = client_for(manager).post(base + "?format=labelstudio", export(pairwise_task()), content_type="application/json")
    assert reply.status_code == 201, reply.json()
    reply = client_for(manager).post(base + "?format=argilla", json.dumps([flat()]).encode(), content_type="application/json")
    assert reply.status_code == 201, reply.json()
    annotators = set(Annotation.objects.values_list("annotator__username", flat=True))
    assert annotators == {"labelstudio:3", "labelstudio:4", "argilla:8a1b7c2e-0000-4000-8000-000000000001"}


def test_a_file_in_another_format_is_refused_with_json_naming_the_format_it_looks_like():
    manager, study = manager_and_study()
    reply = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/import/?format=argilla", export(pairwise_task()), content_type="application/json"
    )
    assert reply.status_code == 400
    assert "looks like Label Studio JSON export" in reply.json()["detail"]
    assert "format=labelstudio" in reply.json()["detail"]
    assert not Prompt.objects.exists()


def test_a_bad_trl_row_is_a_400_naming_line_and_field():
    manager, study = manager_and_study()
    reply = client_for(manager).post(
        f"/api/v1/studies/{study.pk}/import/?format=trl", jsonl(STANDARD, {"prompt": "Q"}), content_type="application/x-ndjson"
    )
    assert reply.status_code == 400
    assert reply.json()["detail"].startswith("Nothing was imported. line 2, field chosen: is missing.")
    assert reply.json()["field"] == "chosen"
    assert not Prompt.objects.exists()
