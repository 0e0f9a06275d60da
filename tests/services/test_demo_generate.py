"""The quickstart's --regenerate path: fresh demo responses from a policy model, none cut off mid-word."""

import json
import re

from annotate.services.demo import DEMO_PROMPTS, demo_generate
from learning.generate import SENTENCE_END
from tests.tiny_models import tiny_llama


def test_regenerated_demo_responses_are_three_per_prompt_and_trimmed_where_the_limit_cut_them(tmp_path):
    tokenizer, llama = tiny_llama()  # random weights: it never stops by itself
    model = tmp_path / "tiny-llama"
    llama.save_pretrained(model)
    tokenizer.save_pretrained(model)
    calls = []
    output = demo_generate(
        model=str(model), output=tmp_path / "demo" / "responses.jsonl", max_new_tokens=6, progress=lambda *a: calls.append(a)
    )

    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    prompts = [json.loads(line) for line in DEMO_PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [r["id"] for r in records] == [p["id"] for p in prompts]
    assert all(r["metadata"] == {"source": str(model)} for r in records)
    assert calls[-1] == (len(prompts), len(prompts))
    responses = [text for r in records for text in r["responses"]]
    assert all(1 <= len(r["responses"]) <= 3 for r in records)
    assert sum(len(r["responses"]) for r in records) > 2 * len(records)  # three samples, rarely equal
    # Six random tokens never end a reply: each was cut back to a sentence's end or marked as cut.
    assert all(text.endswith(" …") or re.search(SENTENCE_END.pattern + "$", text) for text in responses), responses
    assert not (output.parent / "responses.jsonl.partial").exists()
