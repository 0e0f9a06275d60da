"""The manager's settings page: what queries ask, the span taxonomy and rating aspects, the guidelines."""

import re

import pytest
from django.urls import reverse

from annotate.models import Query, Study
from annotate.models.studies import default_rating_aspects, default_span_taxonomy
from annotate.views.study_settings import aspects_text, parse_aspects, parse_taxonomy, taxonomy_text
from tests.factories import make_items, make_study

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def url(study) -> str:
    return reverse("study-settings", args=[study.pk])


def valid(study, **changes) -> dict:
    data = {
        "name": study.name,
        "guidelines": study.guidelines,
        "overlap": str(study.overlap),
        "structure": "pairwise",
        "kinds": [],
        "span_taxonomy": taxonomy_text(study.span_taxonomy),
        "rating_aspects": aspects_text(study.rating_aspects),
    }
    data.update(changes)
    return data


def test_only_a_manager_reaches_the_settings(as_user, study, annotator, researcher, outsider):
    assert as_user(annotator).get(url(study)).status_code == 403
    assert as_user(researcher).post(url(study), valid(study, name="Hijacked")).status_code == 403
    assert as_user(outsider).get(url(study)).status_code == 404
    assert Study.objects.get(pk=study.pk).name == "Helpfulness"


def test_the_page_shows_the_current_settings_and_what_existing_queries_ask(as_user, manager, study):
    html = as_user(manager).get(url(study)).content.decode()
    assert 'name="structure" value="pairwise" checked' in html
    assert "irrelevant | Irrelevant | Not relevant to the question." in html
    assert "instruction_following | Instruction following | 1=Ignores the instruction; 3=Partly follows it" in html
    assert "3 × Pairwise preference" in text_of(html)
    assert "keep what they ask" in html
    assert f'href="{url(study)}" aria-current="page"' in html


def test_the_dashboard_links_to_the_settings_and_says_what_queries_ask(as_user, manager, study):
    text = text_of(as_user(manager).get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "Asks for: Pairwise preference · change" in text


def test_the_dashboard_says_what_a_study_asks_in_the_settings_pages_words(as_user, manager):
    study = make_study(manager=manager, feedback_kinds=["spans", "ratings"])
    text = text_of(as_user(manager).get(reverse("study-dashboard", args=[study.pk])).content.decode())
    assert "Asks for: One response at a time: Error spans + Aspect ratings · change" in text


def test_saving_changes_the_kinds_taxonomy_and_aspects_and_old_queries_keep_theirs(as_user, manager, study):
    client = as_user(manager)
    data = valid(
        study,
        structure="ranking",
        kinds=["critique", "spans"],
        span_taxonomy="# ours\nfactual | Factual error | States something false\nstyle",
        rating_aspects="clarity | Clarity | 1=Muddled; 5=Crystal clear | Easy to follow\nsafety",
        guidelines="Be **kind**.",
        overlap="2",
    )
    reply = client.post(url(study), data)
    assert reply.status_code == 302 and reply["Location"] == url(study)
    study.refresh_from_db()
    assert study.feedback_kinds == ["ranking", "spans", "critique"]
    assert study.span_taxonomy == [
        {"key": "factual", "label": "Factual error", "description": "States something false"},
        {"key": "style", "label": "style", "description": ""},
    ]
    assert study.rating_aspects == [
        {
            "key": "clarity",
            "label": "Clarity",
            "description": "Easy to follow",
            "anchors": {"1": "Muddled", "5": "Crystal clear"},
        },
        {"key": "safety", "label": "safety", "description": "", "anchors": {}},
    ]
    assert (study.guidelines, study.overlap) == ("Be **kind**.", 2)
    assert set(Query.objects.filter(study=study).values_list("kind", flat=True)) == {"pairwise"}
    make_items(study, n_prompts=1, n_responses=3, prefix="new")
    assert Query.objects.filter(study=study, kind="ranking").get().asks == ["ranking", "spans", "critique"]
    assert "Settings saved." in client.get(url(study)).content.decode()


def test_one_response_at_a_time_needs_something_to_ask(as_user, manager, study):
    reply = as_user(manager).post(url(study), valid(study, structure="single", kinds=[]))
    html = reply.content.decode()
    assert reply.status_code == 400
    assert "Nothing was saved." in html
    assert "Shown one response at a time (single), a query must still ask for something: add spans, critique or ratings." in html
    assert 'id="feedback_kinds-error"' in html
    assert Study.objects.get(pk=study.pk).feedback_kinds == ["pairwise"]


def test_pairwise_and_ranking_together_is_refused_inline(as_user, manager, study):
    data = valid(study)
    data["kinds"] = ["ranking"]  # a tampered form: the service still refuses both
    html = as_user(manager).post(url(study), data).content.decode()
    expected = "A study shows its responses one way: pairwise, ranking or single (one response at a time); not pairwise and"
    assert expected + " ranking together." in html


@pytest.mark.parametrize(
    ("field", "text", "complaint"),
    [
        ("span_taxonomy", "Bad Key | Label", "Span categories, line 1: the key must be a lowercase slug"),
        ("span_taxonomy", "a | A\n\n# b\na | Again", "Span categories, line 4: the key &#x27;a&#x27; is repeated or reserved."),
        ("span_taxonomy", "missing-information | Missing", "is repeated or reserved"),
        ("span_taxonomy", "a | b | c | d", "Span categories, line 1: expected key | Label | Description, found 4 parts."),
        ("span_taxonomy", "  \n# nothing", "Span categories must be a non-empty list."),
        ("rating_aspects", "clarity | Clarity | 1=ok; 7=great", "Rating aspects, line 1: anchors look like 1=Poor"),
        ("rating_aspects", "clarity | Clarity | good", "anchors look like"),
    ],
)
def test_a_bad_taxonomy_or_aspect_list_is_shown_beside_its_field_and_nothing_is_saved(
    as_user, manager, study, field, text, complaint
):
    reply = as_user(manager).post(url(study), valid(study, name="Renamed", **{field: text}))
    html = reply.content.decode()
    assert reply.status_code == 400
    error = re.search(rf'<p class="field__error" id="{field}-error">(.*?)</p>', html, re.S)
    assert error and complaint in error.group(1)
    assert f'name="{field}" rows="7" spellcheck="false" wrap="off" class="mono" aria-invalid="true"' in html
    assert text.split("\n")[0].replace("'", "&#x27;") in html  # what they typed is still there to fix
    saved = Study.objects.get(pk=study.pk)
    assert saved.name == "Helpfulness" and saved.span_taxonomy == default_span_taxonomy()


def test_a_bad_overlap_and_an_empty_name_are_named(as_user, manager, study):
    html = as_user(manager).post(url(study), valid(study, overlap="lots")).content.decode()
    assert 'id="overlap-error">Overlap must be a whole number from 1 to 100, not &#x27;lots&#x27;.' in html
    # A huge overlap would make every claim list that many label counts: refused before it is stored.
    html = as_user(manager).post(url(study), valid(study, overlap="100000000000")).content.decode()
    assert 'id="overlap-error">Overlap must be a whole number from 1 to 100, not 100000000000.' in html
    assert Study.objects.get(pk=study.pk).overlap == 1
    html = as_user(manager).post(url(study), valid(study, name="  ")).content.decode()
    assert 'id="name-error">A study needs a name.' in html


# Per number field: a number out of its range, and what the form says of it.
OUT_OF_RANGE = {
    "overlap": ("0", "Overlap must be a whole number from 1 to 100"),
    "round_size": ("0", "Queries per round must be a whole number from 1 to 2147483647"),
    "gold_rate": ("1.5", "Gold rate must be a number from 0 to 1"),
    "qualification_items": ("-1", "Qualification items must be a whole number from 0 to 1000"),
    "qualification_pass": ("2", "Pass mark must be a number from 0 to 1"),
    "annotator_quota": ("-1", "Quota per annotator must be a whole number from 0 to 2147483647"),
}


@pytest.mark.parametrize("field", OUT_OF_RANGE)
def test_a_number_field_says_the_same_of_text_that_is_no_number_as_of_a_number_out_of_range(as_user, manager, study, field):
    client = as_user(manager)
    out_of_range, words = OUT_OF_RANGE[field]
    for typed in (out_of_range, "1/2"):
        reply = client.post(url(study), valid(study, name="Renamed", **{field: typed}))
        assert reply.status_code == 400
        error = re.search(rf'id="{field}-error">(.*?)</', reply.content.decode(), re.S)
        assert error and error.group(1).startswith(f"{words}, not ")
    assert Study.objects.get(pk=study.pk).name == "Helpfulness"


def test_the_text_formats_round_trip_the_defaults():
    assert parse_taxonomy(taxonomy_text(default_span_taxonomy())) == default_span_taxonomy()
    parsed = parse_aspects(aspects_text(default_rating_aspects()))
    assert [(a["key"], a["label"], a["anchors"]) for a in parsed] == [
        (a["key"], a["label"], a["anchors"]) for a in default_rating_aspects()
    ]


def test_the_page_is_headed_with_the_study_and_names_each_choice_as_the_api_does(as_user, manager, study):
    text = text_of(as_user(manager).get(url(study)).content.decode())
    assert "Helpfulness Study settings" in text
    assert "Study dashboard" not in text
    for label, value in [
        ("Pairwise", "pairwise"),
        ("Ranking", "ranking"),
        ("One response at a time", "single"),
        ("Error spans", "spans"),
        ("Critique and revision", "critique"),
        ("Aspect ratings", "ratings"),
    ]:
        assert f"{label} {value}" in text


def test_a_name_longer_than_its_column_is_named_not_a_server_error(as_user, manager, study):
    reply = as_user(manager).post(url(study), valid(study, name="n" * 201))
    assert reply.status_code == 400
    assert 'id="name-error">Name is longer than 200 characters (201).' in reply.content.decode()
    assert Study.objects.get(pk=study.pk).name == "Helpfulness"


def status_url(study, action: str) -> str:
    return reverse("study-status-act", args=[study.pk, action])


def test_the_settings_page_shows_the_study_s_status_and_the_buttons_it_allows(as_user, manager, study):
    client = as_user(manager)
    html = client.get(url(study)).content.decode()
    assert 'data-study-status="active"' in html and "Status: Active" in text_of(html)
    assert f'action="{status_url(study, "pause")}"' in html and f'action="{status_url(study, "archive")}"' in html
    assert status_url(study, "resume") not in html and status_url(study, "unarchive") not in html
    reply = client.post(status_url(study, "pause"))
    assert reply.status_code == 302 and reply["Location"] == url(study)
    html = client.get(url(study)).content.decode()
    assert "Paused: annotators are served no queries until you resume the study." in html
    assert "Status: Paused" in text_of(html) and f'action="{status_url(study, "resume")}"' in html
    client.post(status_url(study, "archive"))
    html = client.get(url(study)).content.decode()
    assert "Archived: the study is read-only and hidden from the study list" in html
    assert f'action="{status_url(study, "unarchive")}"' in html and status_url(study, "pause") not in html
    assert Study.objects.get(pk=study.pk).status == "archived"


def test_a_status_button_that_no_longer_applies_says_where_the_study_stands(as_user, manager, study):
    client = as_user(manager)
    client.post(status_url(study, "resume"))  # a page left open while another manager resumed it
    assert "The study is active; only a paused study can be resumed." in client.get(url(study)).content.decode()
    assert Study.objects.get(pk=study.pk).status == "active"


@pytest.mark.parametrize("who", ["annotator", "researcher", "reviewer", "outsider"])
def test_only_a_manager_may_press_the_status_buttons(request, as_user, study, who):
    if who == "reviewer":
        from annotate.services.studies import membership_add
        from tests.factories import UserFactory

        user = UserFactory(username="rev")
        membership_add(study=study, username="rev", role="reviewer")
    else:
        user = request.getfixturevalue(who)
    client = as_user(user)
    for action in ("pause", "archive"):
        assert client.post(status_url(study, action)).status_code == (404 if who == "outsider" else 403)
    assert Study.objects.get(pk=study.pk).status == "active"


def test_a_status_action_is_a_post_to_a_known_action(as_user, manager, study):
    client = as_user(manager)
    assert client.get(status_url(study, "pause")).status_code == 405
    assert client.post(status_url(study, "delete")).status_code == 404
    assert Study.objects.get(pk=study.pk).status == "active"


def test_an_archived_study_s_settings_are_refused_saying_so(as_user, manager, study):
    client = as_user(manager)
    client.post(status_url(study, "archive"))
    reply = client.post(url(study), valid(study, name="Renamed"))
    assert reply.status_code == 400
    assert "This study is archived: it is read-only, so changing its settings is refused" in reply.content.decode()
    assert Study.objects.get(pk=study.pk).name == "Helpfulness"


def test_a_manager_sets_and_clears_the_quota_per_annotator(as_user, manager, study):
    client = as_user(manager)
    assert 'name="annotator_quota" value=""' in client.get(url(study)).content.decode()
    assert client.post(url(study), valid(study, annotator_quota="3")).status_code == 302
    assert Study.objects.get(pk=study.pk).annotator_quota == 3
    assert 'name="annotator_quota" value="3"' in client.get(url(study)).content.decode()
    assert client.post(url(study), valid(study, annotator_quota=" ")).status_code == 302
    assert Study.objects.get(pk=study.pk).annotator_quota is None


@pytest.mark.parametrize(
    ("typed", "complaint"),
    [
        ("-2", "Quota per annotator must be a whole number from 0 to 2147483647, not -2."),
        ("many", "Quota per annotator must be a whole number from 0 to 2147483647, not &#x27;many&#x27;."),
        (
            "2",
            "Quota per annotator 2 is below what overlap needs: 1 annotator × 2 = 2 answers, but 3 queries × overlap 1 "
            "= 3 labels are wanted; raise it to at least 3, or leave it empty for no limit.",
        ),
    ],
)
def test_a_bad_quota_is_shown_beside_its_field_and_nothing_is_saved(as_user, manager, study, typed, complaint):
    reply = as_user(manager).post(url(study), valid(study, name="Renamed", annotator_quota=typed))
    assert reply.status_code == 400
    error = re.search(r'id="annotator_quota-error">(.*?)</span>', reply.content.decode(), re.S)
    assert error and error.group(1) == complaint
    saved = Study.objects.get(pk=study.pk)
    assert (saved.name, saved.annotator_quota) == ("Helpfulness", None)


@pytest.mark.parametrize(("action", "said"), [("pause", "Annotators are served no queries"), ("archive", "Read-only")])
@pytest.mark.parametrize("who", ["manager", "researcher"])
def test_the_dashboard_says_when_a_study_is_paused_or_archived_and_still_works(request, as_user, study, action, said, who):
    from annotate.services.study_status import study_status_change

    study_status_change(study=study, action=action)
    reply = as_user(request.getfixturevalue(who)).get(reverse("study-dashboard", args=[study.pk]))
    assert reply.status_code == 200
    html = reply.content.decode()
    assert f'data-study-status="{study.status}"' in html and said in html
    assert ("Status and settings" in html) == (who == "manager")
