"""The round loop on the pages: the dashboard's status line, buttons, history and plot; the workspace between rounds."""

import re

import pytest
from django.urls import reverse

from annotate.models import ModelVersion, Round, TrainingRun
from annotate.services.rounds import round_start

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def no_jobs(queued_jobs):
    """Jobs the loop queues are not sent: the tests run them themselves."""
    return queued_jobs


def finished_round(study, number: int, labels: int, accuracy: float, low: float, high: float) -> Round:
    run = TrainingRun.objects.create(study=study, kind="reward", status="succeeded")
    version = ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=number, base_model="minilm", artifact_path="-", checksum="c",
        metrics={"heldout_accuracy": accuracy}, data_hash="d",
    )  # fmt: skip
    round_ = Round.objects.create(
        study=study, number=number, strategy="d_optimal", chosen_by="d_optimal", size=10, selected=10, status="done",
        trained_version=version, labels=labels, heldout_accuracy=accuracy, heldout_accuracy_low=low,
        heldout_accuracy_high=high,
    )  # fmt: skip
    TrainingRun.objects.filter(pk=run.pk).update(round=round_)
    return round_


def test_a_manager_starts_rounds_from_the_dashboard_and_sees_the_round_collecting(as_user, study, manager, no_jobs):
    client = as_user(manager)
    before = text_of(client.get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "Rounds have not started: the first will be chosen by the random strategy." in before and "Start rounds" in before
    reply = client.post(reverse("study-rounds-act", args=[study.pk, "start"]))
    assert reply.status_code == 302
    text = text_of(client.get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "Round 1 is selecting." in text and "Preparing round 1: selecting…" in text
    assert "Queue its job again" in text  # in case its job was lost
    no_jobs.run_all()
    text = text_of(client.get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "Round 1 of random: 0 / 3 labels" in text
    assert "Force next round" in text and "Pause" in text
    client.post(reverse("study-rounds-act", args=[study.pk, "pause"]))
    text = text_of(client.get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "paused: the next round waits for Resume" in text and "Resume" in text


def test_a_researcher_sees_the_loop_but_no_buttons_and_may_not_post_them(as_user, study, researcher, no_jobs):
    round_start(study=study, by=study.created_by)
    client = as_user(researcher)
    html = client.get(reverse("study-dashboard", args=[study.pk])).content.decode()
    assert "Preparing round 1: selecting…" in text_of(html)
    assert reverse("study-rounds-act", args=[study.pk, "pause"]) not in html
    assert client.post(reverse("study-rounds-act", args=[study.pk, "pause"])).status_code == 403


def test_the_round_history_and_its_accuracy_plot_are_drawn_with_their_interval(as_user, study, manager):
    finished_round(study, 1, labels=10, accuracy=0.6, low=0.5, high=0.7)
    finished_round(study, 2, labels=20, accuracy=0.75, low=0.65, high=0.85)
    html = as_user(manager).get(reverse("study-dashboard", args=[study.pk])).content.decode()
    assert "Round 2 done" in text_of(html)
    history = html[html.index("data-round-history") :]
    assert "0.750" in history and "[0.650, 0.850]" in history
    plot = html[html.index("<svg") : html.index("</svg>")]
    assert plot.count('class="plot__point"') == 2
    assert 'class="plot__band"' in plot and 'class="plot__line"' in plot
    assert "style=" not in plot  # the page's CSP allows no inline styles


def test_a_round_picked_at_random_for_want_of_a_model_says_so(as_user, study, manager, no_jobs):
    study.selection_strategy = "uncertainty"
    study.save(update_fields=["selection_strategy"])
    round_start(study=study, by=manager)
    no_jobs.run_all()
    text = text_of(as_user(manager).get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "picked at random: uncertainty needs a model and none is trained yet" in text


def test_between_rounds_annotators_see_the_next_round_is_being_prepared_not_all_done(as_user, study, annotator, no_jobs):
    round_start(study=study, by=study.created_by)  # round 1 is being selected
    text = text_of(as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode())
    assert "The next round is being prepared" in text and "Preparing round 1: selecting…" in text
    assert "All done" not in text


def test_a_study_without_rounds_is_all_done_as_before(as_user, study, annotator, answer):
    for _ in range(3):
        answer(study, annotator)
    text = text_of(as_user(annotator).get(reverse("workspace", args=[study.pk])).content.decode())
    assert "All done" in text and "being prepared" not in text


def test_a_manager_switches_strategy_and_round_size_on_the_settings_page(as_user, study, manager):
    from tests.views.test_study_settings import url, valid

    client = as_user(manager)
    page = client.get(url(study)).content.decode()
    assert '<option value="d_optimal">D optimal</option>' in page and 'name="round_size" value="100"' in page
    reply = client.post(url(study), valid(study, selection_strategy="d_optimal", round_size="20"))
    assert reply.status_code == 302
    study.refresh_from_db()
    assert (study.selection_strategy, study.round_size) == ("d_optimal", 20)
    refused = client.post(url(study), valid(study, selection_strategy="d_optimal", round_size="0"))
    assert refused.status_code == 400
    assert "Queries per round must be a whole number from 1 to" in text_of(refused.content.decode())
    study.refresh_from_db()
    assert study.round_size == 20


def test_the_round_history_links_each_rounds_jobs_and_a_selection_run_shows_its_picks_briefly(as_user, study, manager, no_jobs):
    from tests.factories import make_items

    make_items(study, n_prompts=30)
    study.round_size = 25
    study.save(update_fields=["round_size"])
    round_start(study=study, by=manager)
    no_jobs.run_all()
    run = Round.objects.get(study=study).current_run()
    client = as_user(manager)
    history = client.get(reverse("study-dashboard", args=[study.pk])).content.decode()
    history = history[history.index("data-round-history") :]
    assert f'href="{reverse("run-detail", args=[run.pk])}"' in history and ">Selection</a>" in history
    assert f'href="{reverse("run-detail", args=[run.pk])}"' in client.get(reverse("study-runs", args=[study.pk])).content.decode()
    page = text_of(client.get(reverse("run-detail", args=[run.pk])).content.decode())
    assert "Picked" in page and "Chosen by" in page and "… (25 in all)" in page
