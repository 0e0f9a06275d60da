"""The dashboard's Export snapshots section: the study's stored exports, each with a download that works in the browser."""

import hashlib
import re

import pytest
from django.urls import reverse

from annotate.services.dataset_exports import dataset_export_create
from tests.factories import make_answer

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_researcher_sees_each_snapshot_and_downloads_its_stored_bytes(
    as_user, study, researcher, annotator, settings, tmp_path
):
    settings.ARTIFACTS_DIR = tmp_path
    for query in study.queries.order_by("id")[:2]:
        make_answer(query, annotator, choice="a")
    study.queries.update(round=1)
    export = dataset_export_create(study=study, by=researcher, format="trl", filters={"rounds": [1], "min_agreement": 0.5})
    client = as_user(researcher)
    html = client.get(reverse("study-dashboard", args=[study.pk])).content.decode()
    section = text_of(html.split('id="snapshots"', 1)[1].split("</section>", 1)[0])
    assert f"#{export.pk} trl (JSON lines)" in section
    assert "rounds 1; min_agreement 0.5" in section and "by rui" in section
    link = f'href="/api/v1/exports/{export.pk}/download/"'
    assert link in html
    reply = client.get(f"/api/v1/exports/{export.pk}/download/")
    assert hashlib.sha256(b"".join(reply.streaming_content)).hexdigest() == export.checksum


def test_the_section_says_how_to_make_one_when_there_are_none(as_user, study, manager):
    html = as_user(manager).get(reverse("study-dashboard", args=[study.pk])).content.decode()
    assert "No snapshots yet." in text_of(html)
    assert f"export_dataset {study.pk} --snapshot" in html
