"""A training run's page and the study's runs list; the progress panel polls until the run ends."""

import re

import pytest
from django.urls import reverse

from annotate.models import ModelVersion, TrainingRun
from tests.factories import UserFactory, make_items, make_run, make_study
from tests.labelling import label_preferring_first_response

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def run(study, manager):
    return TrainingRun.objects.create(
        study=study,
        kind="reward",
        status="running",
        progress=0.4,
        step=40,
        total_steps=100,
        loss=0.5321,
        eta_seconds=95,
        created_by=manager,
    )


def progress(client, run):
    return client.get(reverse("run-progress", args=[run.pk])).content.decode()


def test_the_run_page_shows_progress_and_polls_while_the_run_is_running(as_user, manager, run):
    html = as_user(manager).get(reverse("run-detail", args=[run.pk])).content.decode()
    assert f'hx-get="{reverse("run-progress", args=[run.pk])}"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "step 40 of 100" in html
    assert "loss 0.5321" in html
    assert "about 1 min 35 s left" in html
    assert '<progress class="bar" aria-label="Run progress" value="40" max="100">' in html


def test_the_progress_partial_polls_itself_while_the_run_is_running(as_user, manager, run):
    html = progress(as_user(manager), run)
    assert html.lstrip().startswith('<section id="run-progress"')
    assert "<html" not in html
    assert 'hx-trigger="every 2s"' in html
    assert 'hx-swap="outerHTML"' in html


def test_the_progress_partial_stops_polling_once_the_run_has_finished(as_user, manager, run):
    run.status, run.progress, run.metrics = "succeeded", 1.0, {"eval_accuracy": 0.8125, "pairs": 64}
    run.save()
    html = progress(as_user(manager), run)
    assert "hx-trigger" not in html
    assert "hx-get" not in html
    assert "eval_accuracy" in html and "0.8125" in html
    assert "Succeeded" in html


def test_a_failed_run_shows_its_error_escaped(as_user, manager, run):
    run.status, run.error = "failed", "ValueError: bad <input> & more"
    run.save()
    html = progress(as_user(manager), run)
    assert '<pre class="pre pre--error">ValueError: bad &lt;input&gt; &amp; more</pre>' in html
    assert "hx-trigger" not in html


def test_a_succeeded_run_shows_its_model_version(as_user, manager, study, run):
    run.status = "succeeded"
    run.save()
    ModelVersion.objects.create(
        study=study,
        run=run,
        kind="reward",
        version=3,
        base_model="minilm",
        artifact_path="/a/runs/1/model",
        checksum="c0ffee",
        metrics={"eval_accuracy": 0.9},
        data_hash="d4",
    )
    html = as_user(manager).get(reverse("run-detail", args=[run.pk])).content.decode()
    for text in ("reward v3", "minilm", "/a/runs/1/model", "c0ffee"):
        assert text in html


def test_a_run_measured_on_few_held_out_items_says_its_figures_mean_little(as_user, manager, run):
    run.status, run.metrics = "succeeded", {"eval_accuracy": 1.0, "n_eval": 2, "n_eval_comparisons": 2}
    run.save()
    html = progress(as_user(manager), run)
    assert "Measured on 2 held-out examples: too few for these figures to mean much." in html
    run.metrics = {"eval_accuracy": 0.71, "n_eval": 120, "n_eval_comparisons": 130}
    run.save()
    assert "too few" not in progress(as_user(manager), run)


def test_nested_metrics_read_as_pairs_not_json(as_user, manager, run):
    run.status = "succeeded"
    run.metrics = {"per_annotator_agreement": {"ann-b2": [1, 3], "ann-a1": [4, 4]}, "loss": "bt", "per_category": {}}
    run.save()
    html = progress(as_user(manager), run)
    assert "ann-a1: 4/4 · ann-b2: 1/3" in html
    assert '<th scope="row" class="metric-name" title="per_category">per_category</th><td class="num">none</td>' in html


def test_metrics_are_shown_in_words_with_a_line_each_and_unknown_names_as_they_are(as_user, manager, researcher, study, run):
    run.status = "succeeded"
    run.metrics = {"heldout_ece": 0.04, "n_eval_comparisons": 40, "brand_new_metric": 3}
    run.save()
    text = text_of(progress(as_user(manager), run))
    assert "Calibration error How far the model's confidence is from how often it is right" in text.replace("&#x27;", "'")
    assert "Held-out comparisons Comparisons the held-out figures are measured on" in text
    assert "brand_new_metric 3" in text
    assert "heldout_ece" not in text  # only in the row's title, for whoever reads the API
    ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=1, base_model="minilm", artifact_path="/a", checksum="x",
        metrics={"heldout_accuracy": 0.8}, data_hash="d",
    )  # fmt: skip
    table = text_of(as_user(researcher).get(reverse("study-runs", args=[study.pk])).content.decode())
    assert "Held-out accuracy Share of held-out comparisons where the model scores the preferred response higher" in table


def test_a_researcher_may_watch_a_run_but_an_annotator_may_not(as_user, researcher, annotator, outsider, run):
    assert as_user(researcher).get(reverse("run-detail", args=[run.pk])).status_code == 200
    assert as_user(annotator).get(reverse("run-progress", args=[run.pk])).status_code == 403
    assert as_user(outsider).get(reverse("run-detail", args=[run.pk])).status_code == 404


def test_the_runs_page_puts_model_versions_and_their_metrics_side_by_side(as_user, researcher, study, manager):
    for number, accuracy in ((1, 0.71), (2, 0.84)):
        run = TrainingRun.objects.create(study=study, kind="reward", status="succeeded", progress=1.0, created_by=manager)
        ModelVersion.objects.create(
            study=study,
            run=run,
            kind="reward",
            version=number,
            base_model="minilm",
            artifact_path=f"/a/{number}",
            checksum="x",
            metrics={"eval_accuracy": accuracy},
            data_hash="d",
        )
    html = as_user(researcher).get(reverse("study-runs", args=[study.pk])).content.decode()
    assert html.index("reward v2") < html.index("reward v1")
    row = html[html.index("eval_accuracy") :]
    assert row.index("0.84") < row.index("0.71")
    assert "Train reward model" not in html  # a researcher may not train


def test_an_annotator_gets_403_on_the_runs_page(as_user, annotator, study):
    assert as_user(annotator).get(reverse("study-runs", args=[study.pk])).status_code == 403


def test_a_manager_cancels_a_running_run_from_its_page_and_the_button_goes_away(client):

    study = make_study()
    run = make_run(study, "reward")
    client.force_login(study.created_by)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Cancel run" in page
    client.post(f"/runs/{run.pk}/cancel/")
    assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"
    assert "Cancel run" not in client.get(f"/runs/{run.pk}/").content.decode()


def test_a_researcher_sees_no_cancel_button_and_cannot_cancel(client):

    researcher = UserFactory()
    study = make_study(researchers=[researcher])
    run = make_run(study, "reward")
    client.force_login(researcher)
    assert "Cancel run" not in client.get(f"/runs/{run.pk}/").content.decode()
    assert client.post(f"/runs/{run.pk}/cancel/").status_code == 403
    assert TrainingRun.objects.get(pk=run.pk).status == "queued"


def test_the_dashboard_trains_the_kind_the_manager_picks_and_refuses_one_that_cannot_run(client):
    annotator = UserFactory()
    study = make_study(annotators=[annotator])
    make_items(study, n_prompts=8)
    label_preferring_first_response(study, annotator)
    client.force_login(study.created_by)
    html = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'value="reward"' in html and 'value="rating_reward"' not in html
    assert "Needs 8 rated responses; has 0" in html
    reply = client.post(f"/studies/{study.pk}/train/", {"kind": "rating_reward"}, follow=True)
    assert "Nothing was started: a rating model needs 8 rated responses; has 0." in reply.content.decode()
    assert not TrainingRun.objects.exists()
    client.post(f"/studies/{study.pk}/train/", {"kind": "reward"})
    assert TrainingRun.objects.get(study=study).kind == "reward"
