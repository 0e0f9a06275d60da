"""The workspace for every kind of query: what it shows, and how its form becomes the service's answer."""

import json
import re

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import escape

from annotate.errors import InvalidInput
from annotate.models import Annotation, CritiquePart, PairwiseChoice, RankingPart, RatingPart, SpanPart
from annotate.services.assignments import assignment_next
from annotate.services.items import items_import
from annotate.views.answers import answer_from_post, friendly, with_letters
from tests.factories import jsonl, make_study

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
ASPECTS = [
    {"key": "clarity", "label": "Clarity", "anchors": {"1": "Muddled", "5": "Crystal clear"}},
    {"key": "tone", "label": "Tone"},
]


def setup(annotator, kinds, responses, prompt="Tell me something.", **fields):
    """A study asking for `kinds` with one prompt; the annotator's query claimed, shown in its own order."""
    study = make_study(annotators=[annotator], feedback_kinds=kinds, **fields)
    items_import(study=study, lines=jsonl([{"id": "p1", "prompt": prompt, "responses": responses}]))
    assignment = assignment_next(study=study, annotator=annotator)
    assignment.display_order = list(range(len(assignment.display_order)))
    assignment.save(update_fields=["display_order"])
    return study, assignment, assignment.query.ordered_responses()


def form(**fields) -> QueryDict:
    data = QueryDict(mutable=True)
    for key, value in fields.items():
        data[key.replace("__", "-")] = value
    return data


def page(client, study) -> str:
    return client.get(reverse("workspace", args=[study.pk])).content.decode()


def submit(client, study, assignment, data: dict):
    url = reverse("workspace-submit", kwargs={"study_id": study.pk, "query_id": assignment.query_id})
    return client.post(url, {"client_key": f"web-{assignment.pk}", **data}, **HTMX)


# ---- the form as an answer ----------------------------------------------------------------------


def test_a_pairwise_form_gives_the_choice_and_a_default_strength(annotator):
    study, assignment, responses = setup(annotator, ["pairwise"], ["a", "b"])
    answer = answer_from_post(assignment.query, responses, form(choice="tie", spans="[1]"))
    assert answer == {"choice": "tie", "strength": 2}  # fields for kinds the query does not ask for are not read


def test_a_ranking_form_gives_the_groups_or_the_reason(annotator):
    study, assignment, responses = setup(annotator, ["ranking"], ["a", "b", "c"])
    ids = [r.pk for r in responses]
    groups = [[ids[2]], [ids[0], ids[1]]]
    assert answer_from_post(assignment.query, responses, form(ranking=json.dumps(groups))) == {"ranking": groups}
    cannot = form(ranking=json.dumps(groups), rank_mode="cannot", cannot_rank="All off topic.")
    assert answer_from_post(assignment.query, responses, cannot) == {"cannot_rank": "All off topic."}
    for bad, complaint in (("", "Rank the responses"), ("[[1,", "not valid JSON"), ('{"a": 1}', "must be a JSON list")):
        with pytest.raises(InvalidInput, match=complaint) as caught:
            answer_from_post(assignment.query, responses, form(ranking=bad))
        assert caught.value.field == "ranking"


def test_a_spans_form_passes_the_code_point_offsets_on(annotator):
    study, assignment, (response,) = setup(annotator, ["spans"], ["Café 👩‍👩‍👧 東京"])
    spans = [{"response": response.pk, "start": 5, "end": 10, "category": "irrelevant", "note": "emoji"}]
    assert answer_from_post(assignment.query, [response], form(spans=json.dumps(spans))) == {"spans": spans}
    assert answer_from_post(assignment.query, [response], form()) == {"spans": []}


def test_an_unchanged_revision_is_no_revision_even_with_crlf_line_breaks(annotator):
    study, assignment, (response,) = setup(annotator, ["critique"], ["Line one.\nLine two."])
    rid = response.pk
    unchanged = form(
        critique_response=str(rid), **{f"critique__{rid}": "Too short.", f"revision__{rid}": "Line one.\r\nLine two.\r\n"}
    )
    assert answer_from_post(assignment.query, [response], unchanged) == {
        "critiques": [{"response": rid, "critique": "Too short."}]
    }
    changed = form(**{f"critique__{rid}": "Too short.", f"revision__{rid}": "Line one.\r\nLine two, longer."})
    assert answer_from_post(assignment.query, [response], changed)["critiques"][0]["revision"] == "Line one.\nLine two, longer."


def test_a_critique_of_one_of_two_responses_must_say_which(annotator):
    study, assignment, responses = setup(annotator, ["pairwise", "critique"], ["a", "b"])
    with pytest.raises(InvalidInput) as caught:
        answer_from_post(assignment.query, responses, form(choice="a", **{f"critique__{responses[1].pk}": "x"}))
    assert caught.value.field == "critique_response"
    answer = answer_from_post(
        assignment.query,
        responses,
        form(choice="a", critique_response=str(responses[1].pk), **{f"critique__{responses[1].pk}": "x"}),
    )
    assert answer["critiques"] == [{"response": responses[1].pk, "critique": "x"}]


def test_ratings_are_read_for_every_response_and_aspect(annotator):
    study, assignment, (a, b) = setup(annotator, ["pairwise", "ratings"], ["a", "b"], rating_aspects=ASPECTS)
    data = form(choice="a", **{f"rating__{a.pk}__clarity": "5", f"rating__{a.pk}__tone": "4", f"rating__{b.pk}__clarity": "2"})
    ratings = answer_from_post(assignment.query, [a, b], data)["ratings"]
    assert ratings == [
        {"response": a.pk, "aspect": "clarity", "value": 5},
        {"response": a.pk, "aspect": "tone", "value": 4},
        {"response": b.pk, "aspect": "clarity", "value": 2},
    ]
    with pytest.raises(InvalidInput, match="1 to 5"):
        answer_from_post(assignment.query, [a, b], form(choice="a", **{f"rating__{a.pk}__tone": "high"}))


def test_service_errors_name_responses_by_their_letters_and_fields_in_words():
    letters = {11: "A", 12: "B", 13: "C"}
    assert with_letters("ranking omits response(s) 13, 11.", letters) == "ranking omits responses C, A."
    assert with_letters("tone of response 12 is not rated", letters) == "tone of response B is not rated"
    assert with_letters("response 99 is unknown", letters) == "response 99 is unknown"
    assert friendly("critiques[0].critique is empty.", letters) == "The critique is empty."
    assert friendly("spans[2].category 'x' is not known.", letters) == "Span 3's category 'x' is not known."
    assert friendly("critiques[0].revision is empty.", letters).startswith("The revision is empty: edit the response")


# ---- what each kind shows -----------------------------------------------------------------------


def test_a_ranking_query_shows_a_board_with_every_response_and_its_keys(as_user, annotator):
    study, assignment, responses = setup(annotator, ["ranking"], ["First **bold** answer.", "Second.", "Third."])
    html = page(as_user(annotator), study)
    assert html.count("data-rank-item=") == 3
    assert "First bold answer." in html  # the board's excerpt drops the markdown
    assert 'name="ranking"' in html and 'name="rank_mode" value="rank"' in html and 'name="cannot_rank"' in html
    for key in ("r", "j", "k", "=", "-", "x"):
        assert f"<kbd>{key}</kbd>" in html
    assert "data-choice-form" not in html and 'name="choice"' not in html


def test_a_spans_query_shows_the_exact_text_plainly_and_the_taxonomy_with_digits(as_user, annotator):
    text = "**not bold** <b>x</b>\r\nCafé 👩‍👩‍👧"
    study, assignment, (response,) = setup(annotator, ["spans"], [text])
    html = page(as_user(annotator), study)
    texts = json.loads(re.search(r'<script id="workspace-texts" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert texts == {str(response.pk): text}  # CR LF kept: HTML parsing would have made it LF
    categories = json.loads(
        re.search(r'<script id="span-categories" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    assert [(c["key"], c["digit"]) for c in categories][:2] == [("irrelevant", "1"), ("redundant", "2")]
    assert f'data-span-text="{response.pk}"' in html
    assert "**not bold** &lt;b&gt;x&lt;/b&gt;" in html and "<strong>not bold</strong>" not in html
    assert "data-span-popover" in html and 'name="spans"' in html and "<kbd>m</kbd>" in html


def test_a_critique_query_prefills_the_revision_with_the_response_exactly(as_user, annotator):
    study, assignment, (response,) = setup(annotator, ["critique"], ["\nStarts with a blank line & <tags>."])
    html = page(as_user(annotator), study)
    # The newline after <textarea> is eaten by the HTML parser, so one is written before the text.
    textarea = f'data-revision="{response.pk}" maxlength="20000" spellcheck="true">'
    assert textarea + "\n\nStarts with a blank line &amp; &lt;tags&gt;.</textarea>" in html
    assert f'name="critique_response" value="{response.pk}"' in html


def test_a_pairwise_critique_offers_both_responses_and_starts_on_the_first(as_user, annotator):
    study, assignment, (a, b) = setup(annotator, ["pairwise", "critique"], ["a", "b"])
    html = page(as_user(annotator), study)
    assert f'name="critique_response" value="{a.pk}" data-letter="A" checked' in html
    assert f'name="critique_response" value="{b.pk}" data-letter="B">' in html
    assert "chose against" in html
    assert 'type="radio" name="choice"' in html  # choices are picked, then submitted with the rest


def test_a_ratings_query_shows_a_scale_per_response_and_aspect_with_anchors(as_user, annotator):
    study, assignment, (a, b) = setup(annotator, ["pairwise", "ratings"], ["a", "b"], rating_aspects=ASPECTS)
    html = page(as_user(annotator), study)
    for rid in (a.pk, b.pk):
        for key in ("clarity", "tone"):
            assert html.count(f'name="rating-{rid}-{key}"') == 5
    assert html.count('<span class="scale__anchor">Crystal clear</span>') == 2
    assert html.count('<span class="scale__anchor">Muddled</span>') == 2


def test_prompts_and_responses_render_markdown_outside_span_mode(as_user, annotator):
    prompt = [
        {"role": "user", "content": "Show **code**"},
        {"role": "assistant", "content": "Which?"},
        {"role": "user", "content": "Any."},
    ]
    study, assignment, _ = setup(annotator, ["pairwise"], ["```py\nx = 1\n```", "- a\n- b"], prompt=prompt)
    html = page(as_user(annotator), study)
    assert "Show <strong>code</strong>" in html and "3 turns" in html
    assert "<pre><code>x = 1\n</code></pre>" in html and "<ul>\n<li>a</li>" in html


# ---- submitting each kind -----------------------------------------------------------------------


def test_a_ranking_is_stored_as_its_groups(as_user, annotator):
    study, assignment, (a, b, c) = setup(annotator, ["ranking"], ["a", "b", "c"])
    reply = submit(as_user(annotator), study, assignment, {"ranking": json.dumps([[c.pk, a.pk], [b.pk]]), "active_ms": "4200"})
    assert reply.status_code == 200 and "All done" in reply.content.decode()
    assert RankingPart.objects.get().groups == [[c.pk, a.pk], [b.pk]]
    assert Annotation.objects.get().active_ms == 4200


def test_cannot_rank_is_stored_with_its_reason(as_user, annotator):
    study, assignment, _ = setup(annotator, ["ranking"], ["a", "b", "c"])
    submit(as_user(annotator), study, assignment, {"rank_mode": "cannot", "cannot_rank": "Gibberish.", "ranking": "[]"})
    assert RankingPart.objects.get().cannot_rank_reason == "Gibberish."


def test_spans_pairwise_critique_and_ratings_are_stored_from_one_form(as_user, annotator):
    kinds = ["pairwise", "spans", "critique", "ratings"]
    study, assignment, (a, b) = setup(annotator, kinds, ["Paris is in Spain.", "Paris is in France."], rating_aspects=ASPECTS)
    data = {
        "choice": "b",
        "strength": "3",
        "spans": json.dumps([{"response": a.pk, "start": 12, "end": 17, "category": "wrong-grounding", "note": ""}]),
        "critique_response": str(a.pk),
        f"critique-{a.pk}": "Wrong country.",
        f"revision-{a.pk}": "Paris is in France.",
        f"critique-{b.pk}": "",
        f"revision-{b.pk}": "Paris is in France.",
        **{f"rating-{r.pk}-{k}": "3" for r in (a, b) for k in ("clarity", "tone")},
        "active_ms": "not a number",
    }
    reply = submit(as_user(annotator), study, assignment, data)
    assert "All done" in reply.content.decode(), reply.content.decode()[:2000]
    assert PairwiseChoice.objects.get().choice == "b"
    span = SpanPart.objects.get()
    assert a.text[span.start : span.end] == "Spain"
    assert CritiquePart.objects.values_list("response_id", "revision").get() == (a.pk, "Paris is in France.")
    assert RatingPart.objects.count() == 4
    assert Annotation.objects.get().active_ms is None  # a garbled count is dropped, not an error


def test_an_invalid_answer_comes_back_with_everything_posted_and_the_error_in_letters(as_user, annotator):
    kinds = ["pairwise", "spans", "critique", "ratings"]
    study, assignment, (a, b) = setup(annotator, kinds, ["one", "two"], rating_aspects=ASPECTS)
    spans = json.dumps([{"response": b.pk, "start": 0, "end": 3, "category": "redundant", "note": "n"}])
    data = {
        "choice": "a",
        "strength": "1",
        "spans": spans,
        "critique_response": str(b.pk),
        f"critique-{b.pk}": "Too terse.",
        f"revision-{b.pk}": "two, said better",
        f"rating-{a.pk}-clarity": "4",
        "active_ms": "9000",
    }
    reply = submit(as_user(annotator), study, assignment, data)
    html = reply.content.decode()
    assert reply.status_code == 200 and not Annotation.objects.exists()
    assert 'class="alert alert--error"' in html and "response A is not rated" in html
    assert 'name="choice" value="a" data-key="1" checked' in html
    assert 'name="strength" value="1" data-key="q" checked' in html
    assert f'name="rating-{a.pk}-clarity" value="4" checked' in html
    assert f'name="spans" value="{escape(spans)}"' in html
    assert "Too terse.</textarea>" in html and "two, said better</textarea>" in html
    assert f'name="critique_response" value="{b.pk}" data-letter="B" checked' in html
    assert 'data-active-ms="9000"' in html
