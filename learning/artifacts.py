"""Save and load model versions: weights + metadata.json + checksums.json, written atomically.

Layout of an artifact folder::

    weights.safetensors   (optional) tensors passed as ``tensors=``
    <any other files>     written by the caller's ``write`` callback or passed as ``files=``
    metadata.json         config, data hash, seed, code version, metrics (caller's dict)
    checksums.json        {"algorithm": "sha256", "files": {relative path: sha256}}

The overall checksum is the sha256 of checksums.json's bytes; callers store it on the
ModelVersion row. Everything is written into a temporary sibling folder and renamed into place,
so a crash never leaves a half-written artifact. No torch import unless tensors are involved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import learning

WEIGHTS_FILE = "weights.safetensors"
METADATA_FILE = "metadata.json"
CHECKSUMS_FILE = "checksums.json"
FORMAT_VERSION = 1


class ArtifactIntegrityError(Exception):
    """An artifact file is missing, unexpected, or does not match its recorded checksum."""


@dataclass(frozen=True)
class Artifact:
    """A verified artifact folder. ``checksum`` is the overall checksum (over the manifest)."""

    path: Path
    metadata: dict
    checksum: str
    files: list[str] = field(default_factory=list)

    def load_tensors(self, name: str = WEIGHTS_FILE) -> dict[str, Any]:
        """Read a safetensors file of this (already verified) artifact onto the CPU."""
        from safetensors.torch import load_file

        return load_file(str(self.path / name), device="cpu")


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed so multi-GB weights do not need to fit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _relative_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _manifest_bytes(checksums: Mapping[str, str]) -> bytes:
    manifest = {"algorithm": "sha256", "files": dict(sorted(checksums.items()))}
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _fsync_tree(root: Path) -> None:
    # Make the staged files durable before the rename publishes them.
    for path in [p for p in root.rglob("*") if p.is_file()]:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _save_tensors(tensors: Mapping[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    # safetensors refuses tensors that share storage (tied weights): give each its own copy.
    plain = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in tensors.items()}
    save_file(plain, str(path), metadata={"format": "pt"})


def save_artifact(
    output_dir: str | os.PathLike,
    *,
    metadata: dict,
    tensors: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes | str] | None = None,
    write: Callable[[Path], None] | None = None,
    overwrite: bool = False,
) -> str:
    """Write an artifact atomically and return its overall checksum.

    ``tensors`` go to weights.safetensors; ``files`` maps relative names to contents; ``write``
    is called with the staging folder to add anything else (e.g. ``tokenizer.save_pretrained``).
    ``metadata`` must be JSON-serialisable; ``format_version`` and ``code_version`` are added.
    ``output_dir`` may be absent or an empty folder; an existing artifact there is replaced only
    with ``overwrite=True`` (the old one stays whole until the new one is in place).
    """
    target = Path(output_dir)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"artifact folder {target} already exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        if tensors is not None:
            _save_tensors(tensors, staging / WEIGHTS_FILE)
        for name, content in (files or {}).items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        if write is not None:
            write(staging)
        reserved = {METADATA_FILE, CHECKSUMS_FILE} & set(_relative_files(staging))
        if reserved:
            raise ValueError(f"artifact content may not include {sorted(reserved)}")
        full_metadata = {
            **metadata,
            "format_version": FORMAT_VERSION,
            "code_version": learning.__version__,
        }
        (staging / METADATA_FILE).write_text(json.dumps(full_metadata, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        checksums = {name: file_sha256(staging / name) for name in _relative_files(staging)}
        manifest = _manifest_bytes(checksums)
        (staging / CHECKSUMS_FILE).write_bytes(manifest)
        _fsync_tree(staging)
        if target.exists():
            target.rename(trash)  # an empty folder or, with overwrite, the previous artifact
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)
    return hashlib.sha256(manifest).hexdigest()


def load_artifact(path: str | os.PathLike, *, expected_checksum: str | None = None) -> Artifact:
    """Verify every file of an artifact against checksums.json, then read its metadata.

    Raises ``ArtifactIntegrityError`` naming the file that is missing, unexpected or altered.
    Pass the overall checksum stored at save time as ``expected_checksum`` to also catch a
    rewritten checksums.json.
    """
    root = Path(path)
    manifest_path = root / CHECKSUMS_FILE
    if not manifest_path.is_file():
        raise ArtifactIntegrityError(f"artifact file {CHECKSUMS_FILE} is missing from {root}")
    manifest_bytes = manifest_path.read_bytes()
    checksum = hashlib.sha256(manifest_bytes).hexdigest()
    if expected_checksum is not None and checksum != expected_checksum:
        raise ArtifactIntegrityError(f"artifact file {CHECKSUMS_FILE} in {root} does not match the expected checksum")
    try:
        recorded: dict[str, str] = json.loads(manifest_bytes)["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise ArtifactIntegrityError(f"{manifest_path} is unreadable: {error}") from None

    for name, expected in sorted(recorded.items()):
        file_path = root / name
        if not file_path.is_file():
            raise ArtifactIntegrityError(f"artifact file {name} is missing from {root}")
        if file_sha256(file_path) != expected:
            raise ArtifactIntegrityError(f"artifact file {name} in {root} does not match its recorded sha256")
    extra = sorted(set(_relative_files(root)) - set(recorded) - {CHECKSUMS_FILE})
    if extra:
        raise ArtifactIntegrityError(f"artifact {root} has unexpected files: {', '.join(extra)}")
    if METADATA_FILE not in recorded:
        raise ArtifactIntegrityError(f"artifact file {METADATA_FILE} is missing from {root}")

    metadata = json.loads((root / METADATA_FILE).read_text())
    return Artifact(
        path=root,
        metadata=metadata,
        checksum=checksum,
        files=sorted(recorded),
    )
