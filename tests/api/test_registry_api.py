"""The model registry over the API: versions listed, responses scored, tampered files refused."""

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotate.models import ModelVersion, Response, TrainingRun
from annotate.services.training import training_run_execute, training_run_start
from tests.factories import UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    annotator, researcher = UserFactory(), UserFactory()
    study = make_study(annotators=[annotator], researchers=[researcher])
    make_items(study, n_prompts=10)
    label_preferring_first_response(study, annotator)
    run = training_run_start(
        study=study, requested_by=study.created_by, kind="reward", config={"epochs": 1, "max_length": 48}, enqueue=False
    )
    training_run_execute(run_id=run.pk)
    return study, ModelVersion.objects.get(run=run), {"annotator": annotator, "researcher": researcher}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_researcher_lists_versions_and_scores_stored_responses_and_free_text(trained):
    study, version, people = trained
    client = client_for(people["researcher"])
    listed = client.get(f"/api/v1/studies/{study.pk}/models/").json()
    assert [v["version"] for v in listed] == [1] and listed[0]["checksum"] == version.checksum
    ids = list(Response.objects.filter(prompt__study=study).values_list("pk", flat=True)[:4])
    by_id = client.post(f"/api/v1/models/{version.pk}/score/", {"response_ids": ids}, format="json").json()
    assert [s["response"] for s in by_id["scores"]] == ids
    free = client.post(
        f"/api/v1/models/{version.pk}/score/",
        {
            "items": [
                {"prompt": "What is 1 + 1?", "response": "2"},
                {"prompt": [{"role": "user", "content": "Hi"}], "response": "Hello"},
            ]
        },
        format="json",
    ).json()
    assert len(free["scores"]) == 2 and all(isinstance(x, float) for x in free["scores"])
    again = client.post(f"/api/v1/models/{version.pk}/score/", {"response_ids": ids}, format="json").json()
    assert again == by_id


def test_an_annotator_cannot_use_the_registry(trained):
    study, version, people = trained
    client = client_for(people["annotator"])
    assert client.get(f"/api/v1/studies/{study.pk}/models/").status_code == 403
    assert client.post(f"/api/v1/models/{version.pk}/score/", {"response_ids": []}, format="json").status_code == 403


def test_scoring_with_a_tampered_artifact_is_refused_naming_the_file(trained):
    study, version, _ = trained
    weights = next(p for p in Path(version.artifact_path).rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    ids = list(Response.objects.filter(prompt__study=study).values_list("pk", flat=True)[:2])
    reply = client_for(study.created_by).post(f"/api/v1/models/{version.pk}/score/", {"response_ids": ids}, format="json")
    assert reply.status_code == 409
    assert weights.name in reply.json()["detail"]


def test_a_response_from_another_study_is_refused(trained):
    study, version, _ = trained
    other = make_study(name="Other")
    make_items(other, n_prompts=1, prefix="o")
    foreign = Response.objects.filter(prompt__study=other).first().pk
    reply = client_for(study.created_by).post(f"/api/v1/models/{version.pk}/score/", {"response_ids": [foreign]}, format="json")
    assert reply.status_code == 400 and str(foreign) in reply.json()["detail"]


def test_the_registry_gives_each_metric_its_words_as_the_pages_do():
    study = make_study()
    run = TrainingRun.objects.create(study=study, kind="reward", status="succeeded")
    version = ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=1, base_model="minilm", artifact_path="/a", checksum="x", data_hash="d",
        metrics={"heldout_ece": 0.05, "brand_new_metric": 1},
    )  # fmt: skip
    listed = client_for(study.created_by).get(f"/api/v1/studies/{study.pk}/models/").json()
    assert listed[0]["id"] == version.pk
    assert listed[0]["metric_labels"]["heldout_ece"]["label"] == "Calibration error"
    assert listed[0]["metric_labels"]["heldout_ece"]["explanation"].startswith("How far the model's confidence")
    assert listed[0]["metric_labels"]["brand_new_metric"] == {"label": "brand_new_metric", "explanation": ""}
