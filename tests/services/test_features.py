"""Features of a study's responses: a run fills the cache once, selection reads pair differences, margins score."""

import numpy as np
import pytest

from annotate.errors import Conflict
from annotate.models import ModelVersion, Query, Response
from annotate.services.features import (
    feature_cache,
    features_refresh,
    query_feature_groups,
    query_margins,
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


def test_query_features_are_the_pair_differences_in_canonical_order_read_from_the_cache(study, tmp_path):
    ranked = make_study(reward_model=study.reward_model, feedback_kinds=["ranking"], name="Ranked")
    make_items(ranked, n_prompts=2, n_responses=3)
    version = make_version(ranked, tmp_path)
    ranking = Query.objects.filter(study=ranked).order_by("pk").first()
    groups = query_feature_groups(study=ranked, queries=[ranking], version=version)  # computes inline
    cache = feature_cache(ranked, f"v{version.pk}")
    assert cache.missing([r.pk for r in ranking.ordered_responses()]) == []
    pairwise = Query.objects.filter(study=study).order_by("pk").first()
    pairwise_groups = query_feature_groups(study=study, queries=[pairwise], version=None)
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


def test_query_margins_are_the_differences_of_the_version_rewards_per_member(study, tmp_path):
    queries = list(Query.objects.order_by("pk"))
    single = make_version(study, tmp_path)
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
    margins = query_margins(version=ensemble, queries=queries)
    assert margins.shape == (2, len(queries)) and not np.allclose(margins[0], margins[1])
    mean = model_version_score(version=ensemble, items=[(r.prompt.messages, r.text) for r in queries[0].ordered_responses()])
    assert margins[:, 0].mean() == pytest.approx(mean.values[0] - mean.values[1], abs=1e-5)


def test_margins_from_a_tampered_version_are_refused_naming_it(study, tmp_path):
    version = make_version(study, tmp_path)
    (tmp_path / f"version-{study.pk}-1" / "metadata.json").write_text("{}")
    with pytest.raises(Conflict, match=f"Model version {version.pk} cannot be used"):
        query_margins(version=version, queries=list(Query.objects.all()))


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
