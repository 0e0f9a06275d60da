"""learning.artifacts: checksummed, atomically written model folders."""

import json

import pytest
import torch

from learning.artifacts import ArtifactIntegrityError, load_artifact, save_artifact


def _save(folder, **kwargs):
    defaults = {
        "metadata": {"seed": 3, "data_hash": "abc"},
        "tensors": {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
        "files": {"notes/readme.txt": "hello"},
    }
    return save_artifact(folder, **{**defaults, **kwargs})


def test_saved_artifact_loads_back_with_its_metadata_tensors_and_checksum(tmp_path):
    checksum = _save(tmp_path / "model")
    artifact = load_artifact(tmp_path / "model", expected_checksum=checksum)
    assert artifact.checksum == checksum
    assert artifact.metadata["seed"] == 3 and artifact.metadata["code_version"]
    assert artifact.files == ["metadata.json", "notes/readme.txt", "weights.safetensors"]
    assert torch.equal(artifact.load_tensors()["w"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    manifest = json.loads((tmp_path / "model" / "checksums.json").read_text())
    assert set(manifest["files"]) == set(artifact.files)


def test_identical_content_gives_the_same_checksum(tmp_path):
    assert _save(tmp_path / "a") == _save(tmp_path / "b")


def test_a_tampered_file_fails_to_load_naming_the_file(tmp_path):
    _save(tmp_path / "model")
    weights = tmp_path / "model" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="weights.safetensors"):
        load_artifact(tmp_path / "model")


def test_a_missing_file_fails_to_load_naming_the_file(tmp_path):
    _save(tmp_path / "model")
    (tmp_path / "model" / "notes" / "readme.txt").unlink()
    with pytest.raises(ArtifactIntegrityError, match="notes/readme.txt"):
        load_artifact(tmp_path / "model")


def test_a_folder_without_a_manifest_is_not_an_artifact(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ArtifactIntegrityError, match="checksums.json"):
        load_artifact(tmp_path / "model")


def test_an_unexpected_checksum_is_reported(tmp_path):
    _save(tmp_path / "model")
    with pytest.raises(ArtifactIntegrityError, match="checksums.json"):
        load_artifact(tmp_path / "model", expected_checksum="0" * 64)


def test_a_crash_while_writing_leaves_no_artifact_and_no_temp_folder(tmp_path):
    def crash(staging):
        (staging / "partial.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _save(tmp_path / "model", write=crash)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_artifact_is_kept_unless_overwrite_is_asked(tmp_path):
    first = _save(tmp_path / "model")
    with pytest.raises(FileExistsError):
        _save(tmp_path / "model", metadata={"seed": 4})
    assert load_artifact(tmp_path / "model").checksum == first
    second = _save(tmp_path / "model", metadata={"seed": 4}, overwrite=True)
    assert load_artifact(tmp_path / "model").metadata["seed"] == 4 and second != first
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_an_empty_existing_folder_can_receive_an_artifact(tmp_path):
    (tmp_path / "model").mkdir()
    checksum = _save(tmp_path / "model")
    assert load_artifact(tmp_path / "model").checksum == checksum
