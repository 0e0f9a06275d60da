"""Features of a study's responses: a run fills the cache once, selection reads pair differences, margins score."""

import numpy as np
import pytest

from annotate.models import ModelVersion, Query, Response
from annotate.services.features import (
    feature_cache,
    features_refresh,
    query_feature_groups,
    query_margins,
    reward_cache,
)
from annotate.services.scoring import model_version_score
from annotate.services.training import training_run_execute
from tests.factories import make_items, make_run, make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(tiny_encoder_dir, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    study = make_study(reward_model=str(tiny_encoder_dir))
    make_items(study, n_prompts=3, n_responses=2)
    make_items(study, n_prompts=2, n_responses=3, prefix="k")
    return study


def make_version(study, tmp_path, members: int = 1) -> ModelVersion:
    """A reward-model version of the study's tiny encoder, saved as training saves one (members differ by head)."""
    import torch

    from learning.models import load_encoder
    from learning.reward.model import RewardModel, save_reward_model

    models = []
    for seed in range(members):
        tokenizer, backbone = load_encoder(study.reward_model)
        torch.manual_seed(seed)
        models.append(RewardModel(backbone))
    folder = tmp_path / f"version-{study.pk}-{members}"
    checksum = save_reward_model(models, tokenizer, folder, max_length=64, metadata={"ensemble_size": members})
    run = make_run(study)
    return ModelVersion.objects.create(
        study=study, run=run, kind="reward", version=1, base_model=study.reward_model,
        artifact_path=str(folder), checksum=checksum, data_hash="x",
    )  # fmt: skip


def execute(run):
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_a_features_run_caches_float16_features_for_every_response_and_a_second_computes_nothing(study):
    first = execute(features_refresh(study=study, version=None, requested_by=study.created_by))
    assert first.status == "succeeded", first.error
    assert first.metrics == {"responses": 12, "computed": 12, "dims": 32}
    assert first.progress == 1.0 and first.total_steps == 1
    assert not ModelVersion.objects.exists()  # features register no model

    cache = feature_cache(study, study.reward_model)
    shards = sorted(cache.folder.glob("shard-*.npz"))
    with np.load(shards[0]) as data:
        assert data["features"].dtype == np.float16
        assert sorted(data["ids"].tolist()) == sorted(Response.objects.values_list("pk", flat=True))

    second = execute(features_refresh(study=study, version=None, requested_by=study.created_by))
    assert second.status == "succeeded" and second.metrics["computed"] == 0
    assert sorted(cache.folder.glob("shard-*.npz")) == shards


def test_a_features_run_for_a_tampered_or_missing_version_fails_with_the_checksum_message(study, tmp_path):
    version = make_version(study, tmp_path)
    weights = next(p for p in tmp_path.joinpath(f"version-{study.pk}-1").iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    run = execute(features_refresh(study=study, version=version, requested_by=study.created_by))
    assert run.status == "failed"
    assert run.error.startswith("ArtifactIntegrityError: ") and "does not match its recorded sha256" in run.error
    assert not feature_cache(study, f"v{version.pk}").folder.exists()

    version.artifact_path = str(tmp_path / "gone")
    version.save()
    run = execute(features_refresh(study=study, version=version, requested_by=study.created_by))
    assert run.status == "failed" and "checksums.json is missing" in run.error


def test_query_features_are_the_pair_differences_in_canonical_order_read_from_the_cache(study, tmp_path, forbid_model_loading):
    ranked = make_study(reward_model=study.reward_model, feedback_kinds=["ranking"], name="Ranked")
    make_items(ranked, n_prompts=2, n_responses=3)
    version = make_version(ranked, tmp_path)
    assert execute(features_refresh(study=ranked, version=version, requested_by=ranked.created_by)).status == "succeeded"
    assert execute(features_refresh(study=study, version=None, requested_by=study.created_by)).status == "succeeded"
    ranking = Query.objects.filter(study=ranked).order_by("pk").first()
    pairwise = Query.objects.filter(study=study).order_by("pk").first()
    forbid_model_loading()
    groups = query_feature_groups(study=ranked, queries=[ranking], version=version)
    pairwise_groups = query_feature_groups(study=study, queries=[pairwise], version=None)
    cache = feature_cache(ranked, f"v{version.pk}")
    base_cache = feature_cache(study, study.reward_model)

    def phi(response, cache=cache):
        found, features = cache.load([response.pk])
        assert found.all()
        return features[0]

    a, b = pairwise.ordered_responses()
    assert pairwise_groups[0].shape == (1, 32) and pairwise_groups[0].dtype == np.float32
    np.testing.assert_array_equal(pairwise_groups[0][0], phi(a, base_cache) - phi(b, base_cache))
    x, y, z = ranking.ordered_responses()
    np.testing.assert_array_equal(groups[0], np.stack([phi(x) - phi(y), phi(x) - phi(z), phi(y) - phi(z)]))
    assert np.abs(groups[0]).sum() > 0


def test_query_margins_are_the_differences_of_the_cached_version_rewards_per_member(
    study, tmp_path, monkeypatch, forbid_model_loading
):
    queries = list(Query.objects.order_by("pk"))
    single = make_version(study, tmp_path)
    run = execute(features_refresh(study=study, version=single, requested_by=study.created_by))
    assert run.status == "succeeded" and run.metrics["rewards_computed"] == 12
    with monkeypatch.context() as patch:
        forbid_model_loading(patch)
        margins = query_margins(version=single, queries=queries)
    assert margins.shape == (1, len(queries))
    for n, query in enumerate(queries):
        rewards = model_version_score(
            version=single, items=[(r.prompt.messages, r.text) for r in query.ordered_responses()]
        ).values
        pairs = [(i, j) for i in range(len(rewards)) for j in range(i + 1, len(rewards))]
        assert margins[0, n] == pytest.approx(np.mean([rewards[i] - rewards[j] for i, j in pairs]), abs=1e-5)

    single.delete()
    ensemble = make_version(study, tmp_path, members=2)
    assert execute(features_refresh(study=study, version=ensemble, requested_by=study.created_by)).status == "succeeded"
    margins = query_margins(version=ensemble, queries=queries)
    assert margins.shape == (2, len(queries)) and not np.allclose(margins[0], margins[1])
    mean = model_version_score(version=ensemble, items=[(r.prompt.messages, r.text) for r in queries[0].ordered_responses()])
    assert margins[:, 0].mean() == pytest.approx(mean.values[0] - mean.values[1], abs=1e-5)


def test_a_features_run_under_a_version_scores_only_the_rewards_missing_and_reading_loads_no_model(study, tmp_path, monkeypatch):
    import learning.reward.model

    version = make_version(study, tmp_path, members=2)
    loads = []
    load = learning.reward.model.load_reward_members
    monkeypatch.setattr(learning.reward.model, "load_reward_members", lambda *a, **k: loads.append(a) or load(*a, **k))
    first = execute(features_refresh(study=study, version=version, requested_by=study.created_by))
    assert first.status == "succeeded", first.error
    assert first.metrics == {"responses": 12, "computed": 12, "dims": 32, "rewards_computed": 12}
    assert len(loads) == 1  # the version's artifact, loaded once for its features and its rewards
    cache = reward_cache(study, f"v{version.pk}")
    assert cache.dims == 2  # one column per member
    make_items(study, n_prompts=1, n_responses=2, prefix="late")  # imported after the run
    late = Query.objects.filter(study=study).order_by("-pk").first()
    margins = query_margins(version=version, queries=[Query.objects.order_by("pk").first(), late])
    assert np.isfinite(margins[:, 0]).all() and np.isnan(margins[:, 1]).all()  # not cached: missing, not computed
    assert query_feature_groups(study=study, queries=[late], version=version) == [None]
    shards = sorted(cache.folder.glob("shard-*.npz"))

    second = execute(features_refresh(study=study, version=version, requested_by=study.created_by))
    assert second.metrics == {"responses": 14, "computed": 2, "dims": 32, "rewards_computed": 2}
    assert len(loads) == 2
    assert set(shards) < set(cache.folder.glob("shard-*.npz"))  # one new shard; the old ones untouched
    with np.load(sorted(set(cache.folder.glob("shard-*.npz")) - set(shards))[0]) as data:
        assert data["features"].dtype == np.float32 and data["features"].shape == (2, 2)
    assert np.isfinite(query_margins(version=version, queries=[late])).all()


def test_reading_the_caches_loads_no_model_and_reports_what_is_missing(study, tmp_path, forbid_model_loading):
    version = make_version(study, tmp_path)
    forbid_model_loading()
    queries = list(Query.objects.order_by("pk"))
    assert np.isnan(query_margins(version=version, queries=queries)).all()
    assert query_feature_groups(study=study, queries=queries, version=version) == [None] * len(queries)


def test_a_features_run_page_shows_its_metrics_in_words(study, client):
    run = execute(features_refresh(study=study, version=None, requested_by=study.created_by))
    client.force_login(study.created_by)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Computed" in page and "already cached for this model" in page


def test_features_for_another_studys_version_are_refused_naming_the_field(study, tmp_path):
    from annotate.errors import InvalidInput

    other = make_study(reward_model=study.reward_model, name="Other")
    version = make_version(other, tmp_path)
    with pytest.raises(InvalidInput) as refused:
        features_refresh(study=study, version=version, requested_by=study.created_by)
    assert refused.value.field == "model_version"


def test_response_ids_are_read_in_statements_of_a_bounded_size_and_keep_each_querys_order(monkeypatch):
    import annotate.services.features as features

    study = make_study()
    make_items(study, n_prompts=5)
    queries = list(Query.objects.filter(study=study).order_by("-id"))  # any order: each keeps its place
    expected = [[r.pk for r in q.ordered_responses()] for q in queries]
    monkeypatch.setattr(features, "IDS_PER_READ", 2)
    assert features.query_response_ids(queries) == expected


def test_a_features_run_that_writes_after_its_study_was_deleted_leaves_no_folder_behind(
    study, monkeypatch, django_capture_on_commit_callbacks
):
    """The delete removes the study's folders once it commits; a run still computing then stores its
    chunk (making the cache folder again), finds its row gone and stops: what it wrote goes too."""
    import learning.features
    from annotate.models import Study, TrainingRun
    from annotate.services.features import features_dir
    from annotate.services.studies import study_delete
    from annotate.services.training import run_dir

    run = features_refresh(study=study, version=None, requested_by=study.created_by)
    compute = learning.features.compute_features

    def deleted_while_computing(*args, **kwargs):
        features = compute(*args, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            study_delete(study=Study.objects.get(pk=study.pk))
        return features

    monkeypatch.setattr(learning.features, "compute_features", deleted_while_computing)
    training_run_execute(run_id=run.pk)
    assert not TrainingRun.objects.filter(pk=run.pk).exists()
    assert not features_dir(study).exists() and not run_dir(run).exists()
