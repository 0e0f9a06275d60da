"""The dashboard's plots in a real Chromium: drawn with data, within the CSP."""

from __future__ import annotations

from annotate.models import Round
from tests.browser.test_content_security_policy import visit
from tests.factories import UserFactory, make_answer, make_items, make_study


def test_the_plots_are_drawn_with_data_and_keep_the_policy(page, login, shot):
    people = [UserFactory(username=name) for name in ("ann", "ben", "cat", "<dora>")]
    study = make_study(annotators=people, name="Plots demo")
    make_items(study, n_prompts=6)
    queries = list(study.queries.order_by("id"))
    queries[0].is_gold, queries[0].gold_answer = True, {"choice": "a"}
    queries[0].save()
    for i, query in enumerate(queries):
        for j, person in enumerate(people[: 2 + i % 3]):
            make_answer(query, person, choice="a" if (i + j) % 3 else "b")
    for number, (strategy, labels, accuracy) in enumerate((("random", 10, 0.6), ("d_optimal", 20, 0.72)), start=1):
        Round.objects.create(
            study=study, number=number, strategy=strategy, chosen_by=strategy, size=10, selected=10, status="done",
            labels=labels, heldout_accuracy=accuracy, heldout_accuracy_low=accuracy - 0.1, heldout_accuracy_high=accuracy + 0.1,
        )  # fmt: skip
    login(page, study.created_by)
    visit(page, f"/studies/{study.pk}/")
    section = page.locator("#plots")
    assert section.is_visible()
    for chart in ("days", "annotators", "agreement", "gold", "flags", "strategies"):
        assert section.locator(f'svg[data-chart="plot-{chart}"] rect.plot__bar').count() >= 1, chart
    assert section.locator('svg[data-chart="plot-annotators"] text', has_text="<dora>").count() == 1
    assert section.locator('svg[data-chart="plot-gold"] line.plot__whisker').count() >= 2
    shot(page, "dashboard-plots")
