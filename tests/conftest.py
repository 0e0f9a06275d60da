"""Test defaults, set before Django loads; CI overrides them with PostgreSQL and Redis."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")
# A folder of its own per run, so two test runs never share a SQLite test database.
os.environ.setdefault("PREFLAB_VAR_DIR", tempfile.mkdtemp(prefix="preflab-test-var-"))
os.environ.setdefault("PREFLAB_ARTIFACTS_DIR", tempfile.mkdtemp(prefix="preflab-artifacts-"))

import django  # noqa: E402,F401  (pytest-django sets Django up only once it is imported)
import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip that says why; .ci/run turns its absence into an error."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("PREFLAB_REQUIRE_SHARED_DATA"):
            pytest.fail(f"{SHARED_DATA} is absent and PREFLAB_REQUIRE_SHARED_DATA is set")
        pytest.skip(f"{SHARED_DATA} is absent: it comes from other projects and is never copied into this repository")
    return SHARED_DATA


def pytest_configure(config):
    django.setup()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Factories set passwords for every user; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A tiny BERT saved as a local model folder: any path works as a base model."""
    from tests.tiny_models import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-encoder"))


class Jobs(list):
    """The ids of the runs queued for a worker, recorded instead of sent (services.training.run_enqueue)."""

    def run_all(self) -> None:
        """Run every queued job in order as a worker would, and those they queue in turn, until none is left."""
        from annotate.tasks import train_model

        while self:
            train_model(self.pop(0))

    def kinds(self) -> list[str]:
        from annotate.models import TrainingRun

        kinds = dict(TrainingRun.objects.filter(pk__in=self).values_list("pk", "kind"))
        return [kinds[run_id] for run_id in self]


# Every way a model is loaded: what reads the feature and reward caches must use none.
MODEL_LOADERS = (
    "learning.reward.score.score_responses",
    "learning.reward.model.load_reward_members",
    "learning.features.load_feature_backbone",
    "learning.models.load_encoder",
    "learning.models.load_causal_lm",
)


@pytest.fixture
def forbid_model_loading(monkeypatch):
    """Call it (with a `monkeypatch.context()` to undo it early) and any model load from then on fails the test."""

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded")

    def forbid(patch=monkeypatch) -> None:
        for name in MODEL_LOADERS:
            patch.setattr(name, loaded)

    return forbid


@pytest.fixture
def queued_jobs(monkeypatch) -> Jobs:
    """Jobs are recorded, not sent: a test runs them itself (`run_all`), or not at all."""
    jobs = Jobs()
    monkeypatch.setattr("annotate.services.training.run_enqueue", lambda run: jobs.append(run.pk))
    return jobs
