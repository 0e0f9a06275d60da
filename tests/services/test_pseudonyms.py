"""Annotator pseudonyms: one per person across the deployment's studies, keyed by a secret."""

import pytest

from annotate.selectors.labels import annotator_pseudonym
from annotate.services.assignments import assignment_next
from annotate.services.exports import export_build
from annotate.services.feedback import annotation_submit
from tests.factories import UserFactory, make_items, make_study

pytestmark = pytest.mark.django_db


def exported_annotators(study) -> set[str]:
    return {row["annotator"] for row in export_build(study=study, format="raw").rows}


def test_one_annotator_has_the_same_pseudonym_in_the_exports_of_two_studies():
    annotator = UserFactory(username="ana")
    studies = [make_study(annotators=[annotator], name=name) for name in ("First", "Second")]
    for study in studies:
        make_items(study, n_prompts=1)
        assignment = assignment_next(study=study, annotator=annotator)
        answer = {"choice": "a", "strength": 2}
        annotation_submit(query=assignment.query, annotator=annotator, client_key=f"s{study.pk}", answer=answer)
    first, second = (exported_annotators(study) for study in studies)
    assert first == second == {annotator_pseudonym(annotator.pk)}
    assert "ana" not in first.pop()


def test_pseudonyms_differ_between_people_and_follow_the_pseudonym_key(settings):
    ana, bo = UserFactory(), UserFactory()
    settings.PREFLAB_PSEUDONYM_KEY = "one deployment"
    before = annotator_pseudonym(ana.pk)
    assert before != annotator_pseudonym(bo.pk)
    settings.PREFLAB_PSEUDONYM_KEY = "another deployment"
    assert annotator_pseudonym(ana.pk) != before
