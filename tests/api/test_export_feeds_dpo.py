"""The TRL export is what TRL's DPOTrainer takes: labels in through the API, one DPO step out."""

import json

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, make_items, make_study
from tests.labelling import label_preferring_first_response
from tests.tiny_models import one_dpo_step

pytestmark = pytest.mark.django_db


@pytest.mark.filterwarnings("ignore::FutureWarning")  # trl sets transformers' renamed gradient_checkpointing
def test_the_trl_export_trains_a_tiny_model_for_one_dpo_step(tmp_path):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=4)
    label_preferring_first_response(study, annotator)
    client = APIClient()
    client.force_authenticate(study.created_by)
    reply = client.get(f"/api/v1/studies/{study.pk}/export/?format=trl")
    rows = [json.loads(line) for line in b"".join(reply.streaming_content).decode().splitlines()]
    assert len(rows) == 4

    output, moved = one_dpo_step(rows, tmp_path)
    assert output.global_step == 1
    assert moved
