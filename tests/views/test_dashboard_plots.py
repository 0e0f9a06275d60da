"""The dashboard's plots: each drawn for those who see the dashboard, from a fixed number of queries."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate.models import Round
from tests.factories import UserFactory, make_answer, make_items, make_study
from tests.views.test_rounds_pages import finished_round

pytestmark = pytest.mark.django_db

CHARTS = ("plot-days", "plot-annotators", "plot-agreement", "plot-gold", "plot-flags")


def dashboard(client, study):
    return client.get(reverse("study-dashboard", args=[study.pk]))


def labelled_study(manager, researcher, n_annotators: int):
    """Two pairwise queries answered by every annotator, one of them gold."""
    people = [UserFactory(username=f"ann{i}") for i in range(n_annotators)]
    study = make_study(manager=manager, annotators=people, researchers=[researcher])
    make_items(study, n_prompts=2)
    first, second = study.queries.order_by("id")
    first.is_gold, first.gold_answer = True, {"choice": "a"}
    first.save()
    for i, person in enumerate(people):
        make_answer(first, person, choice="a" if i % 2 else "b")
        make_answer(second, person, choice="a")
    return study


@pytest.mark.parametrize("role", ["manager", "researcher"])
def test_managers_and_researchers_see_every_plot_with_its_numbers(as_user, manager, researcher, role):
    study = labelled_study(manager, researcher, 2)
    html = dashboard(as_user(manager if role == "manager" else researcher), study).content.decode()
    for chart in CHARTS:
        assert f'data-chart="{chart}"' in html, chart
    assert 'aria-labelledby="plot-gold-title"' in html
    assert "ann0: 2" in html and "ann1: 2" in html  # labels per annotator, as text too
    # Gold accuracy, with its Wilson interval: 1 of 1 right, and 0 of 1.
    assert 'ann1: 1.00 <span class="muted">[0.21, 1.00]</span>' in html
    assert 'ann0: 0.00 <span class="muted">[0.00, 0.79]</span>' in html


def test_an_annotator_sees_no_plots(as_user, manager, researcher):
    study = labelled_study(manager, researcher, 1)
    reply = dashboard(as_user(study.memberships.get(role="annotator").user), study)
    assert reply.status_code == 403 and b"data-chart" not in reply.content


def test_labels_given_today_are_the_last_column(as_user, manager, researcher):
    study = labelled_study(manager, researcher, 3)
    html = dashboard(as_user(manager), study).content.decode()
    figure = html[html.index('data-chart="plot-days"') :]
    numbers = re.findall(r"<li>([^<]+)</li>", figure[figure.index("chart__numbers") : figure.index("</ul>")])
    assert len(numbers) == 1 and numbers[0].endswith(": 6")


def test_an_empty_study_says_no_data_yet_for_each_plot(as_user, manager, study):
    html = dashboard(as_user(manager), study).content.decode()
    assert "data-chart=" not in html
    assert html.count("No data yet.") == len(CHARTS)
    assert "Only one strategy has chosen rounds so far" in html


def test_strategies_are_compared_once_two_have_chosen_rounds(as_user, manager, study):
    finished_round(study, 1, 20, 0.6, 0.5, 0.7)
    html = dashboard(as_user(manager), study).content.decode()
    assert 'data-chart="plot-strategies"' not in html and "Only one strategy" in html
    Round.objects.filter(study=study, number=1).update(strategy="random", chosen_by="random")
    finished_round(study, 2, 40, 0.8, 0.7, 0.9)
    html = dashboard(as_user(manager), study).content.decode()
    assert 'data-chart="plot-strategies"' in html
    assert "d_optimal (40 labels): 0.80" in html and "random (20 labels): 0.60" in html


def test_the_plots_cost_the_same_statements_for_two_annotators_as_for_eight(as_user, manager, researcher):
    counts = []
    for n in (2, 8):
        study = labelled_study(manager, researcher, n)
        client = as_user(manager)
        with CaptureQueriesContext(connection) as queries:
            assert dashboard(client, study).status_code == 200
        counts.append(len(queries))
        study.delete()
    assert counts[0] == counts[1], counts
