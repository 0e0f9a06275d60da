"""People and a study for the browser-page tests, built through the services like real data."""

from __future__ import annotations

import pytest

# Django models load only once the root conftest has set Django up, so nothing here imports them
# at module level: this file is loaded before that when pytest is pointed at tests/views.


@pytest.fixture
def manager(db):
    from tests.factories import UserFactory

    return UserFactory(username="mina")


@pytest.fixture
def annotator(db):
    from tests.factories import UserFactory

    return UserFactory(username="ana")


@pytest.fixture
def researcher(db):
    from tests.factories import UserFactory

    return UserFactory(username="rui")


@pytest.fixture
def outsider(db):
    from tests.factories import UserFactory

    return UserFactory(username="otto")


@pytest.fixture
def study(manager, annotator, researcher):
    from tests.factories import make_items, make_study

    study = make_study(manager=manager, annotators=[annotator], researchers=[researcher], name="Helpfulness", overlap=1)
    make_items(study, n_prompts=3)
    return study


@pytest.fixture
def as_user(client):
    """Log the test client in as a user and hand it back."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def answer():
    """Answer a user's next query as the workspace would: a choice in display order."""

    from annotate.services.assignments import assignment_next
    from annotate.services.feedback import annotation_submit

    def submit(study, user, shown_choice: str = "a", strength: int = 2):
        assignment = assignment_next(study=study, annotator=user)
        annotation_submit(
            query=assignment.query,
            annotator=user,
            client_key=f"web-{assignment.pk}",
            answer={"choice": shown_choice, "strength": strength},
        )
        return assignment

    return submit
