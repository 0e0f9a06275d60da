"""Creating a study in the browser and over the API, for the users PREFLAB_STUDY_CREATORS names."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.models import Membership, Study
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(username="sam", is_staff=True)


def test_a_staff_user_sees_the_new_study_button_and_an_annotator_does_not(as_user, staff, annotator):
    assert reverse("study-new") in as_user(staff).get(reverse("study-list")).content.decode()
    assert reverse("study-new") not in as_user(annotator).get(reverse("study-list")).content.decode()


def test_a_new_study_makes_its_creator_manager_and_opens_its_settings(as_user, staff):
    client = as_user(staff)
    reply = client.post(reverse("study-new"), {"name": "  Harmlessness  "})
    study = Study.objects.get()
    assert study.name == "Harmlessness"
    assert reply.status_code == 302 and reply["Location"] == reverse("study-settings", args=[study.pk])
    assert Membership.objects.get(study=study).user == staff and Membership.objects.get(study=study).role == "manager"
    assert "Study &#x27;Harmlessness&#x27; created." in client.get(reply["Location"]).content.decode()


def test_a_study_without_a_name_is_refused_beside_the_field(as_user, staff):
    reply = as_user(staff).post(reverse("study-new"), {"name": "   "})
    assert reply.status_code == 400
    assert "A study needs a name." in reply.content.decode()
    assert not Study.objects.exists()


def test_a_name_too_long_for_the_column_is_refused_saying_the_limit(as_user, staff):
    reply = as_user(staff).post(reverse("study-new"), {"name": "x" * 201})
    assert reply.status_code == 400
    assert "longer than 200 characters (201)" in reply.content.decode()
    assert not Study.objects.exists()


def test_a_user_who_is_not_staff_is_refused_in_the_browser_and_the_api(as_user, annotator):
    client = as_user(annotator)
    assert client.get(reverse("study-new")).status_code == 403
    assert client.post(reverse("study-new"), {"name": "Mine"}).status_code == 403
    api = APIClient()
    api.force_authenticate(annotator)
    reply = api.post("/api/v1/studies/", {"name": "Mine"}, format="json")
    assert reply.status_code == 403
    assert "Only staff users may create studies" in reply.json()["detail"]
    assert not Study.objects.exists()


def test_with_creators_set_to_all_any_logged_in_user_may_create_one(settings, as_user, annotator):
    settings.PREFLAB_STUDY_CREATORS = "all"
    client = as_user(annotator)
    assert reverse("study-new") in client.get(reverse("study-list")).content.decode()
    assert client.post(reverse("study-new"), {"name": "Mine"}).status_code == 302
    api = APIClient()
    api.force_authenticate(UserFactory())
    assert api.post("/api/v1/studies/", {"name": "Theirs"}, format="json").status_code == 201
    assert set(Study.objects.values_list("name", flat=True)) == {"Mine", "Theirs"}


def test_a_visitor_who_is_not_logged_in_is_sent_to_log_in(client):
    reply = client.get(reverse("study-new"))
    assert reply.status_code == 302 and reply["Location"].startswith(reverse("login"))
