"""GET /api/v1/studies/{id}/flags/, the dashboard's flags section, and exports that leave flagged answers out."""

import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotate.models import DatasetExport
from annotate.selectors.flags import study_flags
from annotate.selectors.labels import annotator_pseudonym
from annotate.services.dataset_exports import dataset_export_create, dataset_export_file
from tests.factories import UserFactory
from tests.selectors.test_flags import annotated  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def rows(reply) -> list[dict]:
    return [json.loads(line) for line in b"".join(reply.streaming_content).decode().splitlines()]


def test_a_manager_reads_each_annotators_flags_with_their_numbers(annotated):  # noqa: F811
    study, fast = annotated
    body = client_of(study.created_by).get(f"/api/v1/studies/{study.pk}/flags/").json()
    raised = {row["annotator"]: row["raised"] for row in body["annotators"]}
    assert raised == {"always-a": ["position"], "careful": [], "clicker": ["too_fast"], "longer": ["length"]}
    assert body["annotations"][str(fast[0].pk)] == ["too_fast"]
    clicker = next(row for row in body["annotators"] if row["annotator"] == "clicker")
    assert clicker["pseudonym"] == annotator_pseudonym(fast[0].annotator_id)


@pytest.mark.parametrize("format", ["trl", "kto", "raw", "ratings", "critiques"])
def test_exclude_flagged_leaves_out_exactly_the_rows_of_flagged_answers(annotated, format):  # noqa: F811
    study, _ = annotated
    flagged = {int(a) for a in study_flags(study)["annotations"]}
    client = client_of(study.created_by)
    every = rows(client.get(f"/api/v1/studies/{study.pk}/export/?format={format}"))
    reply = client.get(f"/api/v1/studies/{study.pk}/export/?format={format}&exclude_flagged=1")
    kept = rows(reply)
    assert kept == [row for row in every if row["annotation_id"] not in flagged]
    assert int(reply["X-Preflab-Rows"]) == len(kept)
    assert int(reply["X-Preflab-Flagged-Excluded"]) == len(every) - len(kept)
    if format in ("trl", "kto", "raw"):
        assert kept and len(kept) < len(every)


def test_exclude_flagged_may_name_the_flags_to_leave_out(annotated):  # noqa: F811
    study, fast = annotated
    reply = client_of(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?format=raw&exclude_flagged=too_fast")
    assert {row["annotation_id"] for row in rows(reply)}.isdisjoint({fast[i].pk for i in range(4)})
    assert int(reply["X-Preflab-Flagged-Excluded"]) == 4


def test_raw_rows_carry_their_flags(annotated):  # noqa: F811
    study, fast = annotated
    raw = rows(client_of(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?format=raw"))
    by_id = {row["annotation_id"]: row["flags"] for row in raw}
    assert by_id[fast[0].pk] == ["too_fast"] and by_id[fast[5].pk] == []


@pytest.mark.parametrize(
    "query",
    ["format=trl&exclude_flagged=lazy", "format=fgrlhf&exclude_flagged=1", "format=trl&aggregate=majority&exclude_flagged=1"],
)
def test_a_bad_exclude_flagged_is_refused_naming_it(annotated, query):  # noqa: F811
    study, _ = annotated
    reply = client_of(study.created_by).get(f"/api/v1/studies/{study.pk}/export/?{query}")
    assert reply.status_code == 400
    assert reply.json()["field"] == "exclude_flagged"


def test_a_snapshot_can_leave_flagged_answers_out(annotated, settings, tmp_path):  # noqa: F811
    settings.ARTIFACTS_DIR = tmp_path
    study, _ = annotated
    flagged = {int(a) for a, found in study_flags(study)["annotations"].items() if "position" in found}
    export = dataset_export_create(study=study, by=None, format="raw", filters={"exclude_flagged": ["position"]})
    kept = [json.loads(line) for line in dataset_export_file(export).read_text().splitlines()]
    assert export.row_count == 48 - 12 and {row["annotation_id"] for row in kept}.isdisjoint(flagged)
    assert export.filters == {"exclude_flagged": ["position"]}
    with pytest.raises(Exception, match="filters.exclude_flagged"):
        dataset_export_create(study=study, by=None, format="raw", filters={"exclude_flagged": ["lazy"]})


def test_the_dashboard_shows_the_flags_with_their_numbers(annotated, client):  # noqa: F811
    study, _ = annotated
    client.force_login(study.created_by)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="flags"' in page and 'data-flags-annotator="always-a"' in page
    assert "12 of 12" in page and "p = 0.00049" in page


def test_an_annotator_may_not_read_the_flags(annotated):  # noqa: F811
    study, fast = annotated
    assert client_of(fast[0].annotator).get(f"/api/v1/studies/{study.pk}/flags/").status_code == 403
    assert client_of(UserFactory()).get(f"/api/v1/studies/{study.pk}/flags/").status_code == 404


def test_export_dataset_leaves_flagged_answers_out_when_asked(annotated, tmp_path, settings):  # noqa: F811
    settings.ARTIFACTS_DIR = tmp_path
    study, fast = annotated
    out = tmp_path / "kept.jsonl"
    call_command("export_dataset", str(study.pk), "--format", "raw", "--exclude-flagged", "too_fast", "-o", str(out))
    kept = {json.loads(line)["annotation_id"] for line in out.read_text().splitlines()}
    assert len(kept) == 44 and kept.isdisjoint({fast[i].pk for i in range(4)})
    call_command("export_dataset", str(study.pk), "--format", "raw", "--exclude-flagged", "--snapshot")
    assert DatasetExport.objects.get().filters == {
        "exclude_flagged": ["too_fast", "position", "length", "straight_line", "cycle"]
    }
    with pytest.raises(CommandError, match="Unknown bias flag 'lazy'"):
        call_command("export_dataset", str(study.pk), "--exclude-flagged", "lazy")
