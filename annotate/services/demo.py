"""The quickstart's demo: two users and a study of our own prompts with model-written responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from annotate.models import Study
from annotate.services.items import ImportResult, items_import
from annotate.services.studies import membership_add, study_create

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
DEMO_PROMPTS = DEMO_DIR / "prompts.jsonl"
DEMO_RESPONSES = DEMO_DIR / "responses.jsonl"
DEMO_STUDY_NAME = "Demo: everyday assistant answers"
DEMO_PASSWORD = "preflab-demo"
DEMO_USERS = {"demo-manager": "manager", "demo-annotator": "annotator", "demo-researcher": "researcher"}
DEMO_GUIDELINES = """\
Pick the response you would rather receive.

- Prefer answers that are correct. A confident wrong answer is worse than a hedged right one.
- Then prefer answers that do what was asked (length, format, tone).
- Refusing a harmful request is good; refusing a harmless one is not.
- Use tie when neither is better, and both bad when you would send neither.

Keys: 1 = A is better, 2 = B is better, 3 = tie, 4 = both bad.
How much better, after A or B: Q = slightly, W = clearly, E = much better.
"""


@dataclass
class Demo:
    study: Study
    imported: ImportResult
    users: dict[str, str]


def demo_records(responses_file: Path = DEMO_RESPONSES) -> list[dict]:
    with responses_file.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def demo_generate(
    *, model: str, output: Path, n: int = 3, max_new_tokens: int = 320, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Write the demo prompts with `n` sampled responses each, from the given policy model.

    A response the token limit cut off ends at its last whole sentence instead (see
    learning.generate.trim_unfinished): the demo is a newcomer's first look at Preflab.
    """
    from learning.generate import generate_responses

    prompts = [json.loads(line) for line in DEMO_PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    responses = generate_responses(
        model,
        [p["prompt"] for p in prompts],
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=0.9,
        seed=0,
        cache_dir=None,
        progress=progress,
        trim=True,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for prompt, texts in zip(prompts, responses, strict=True):
            unique = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
            record = {"id": prompt["id"], "prompt": prompt["prompt"], "responses": unique, "metadata": {"source": model}}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial.replace(output)
    return output


@transaction.atomic
def demo_setup(*, responses_file: Path = DEMO_RESPONSES) -> Demo:
    """Create (or find) the demo users and study and import the demo items; safe to run again."""
    User = get_user_model()
    users = {}
    for username in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(DEMO_PASSWORD)
            # Staff may create studies (PREFLAB_STUDY_CREATORS=staff): the demo manager can try it.
            user.is_staff = DEMO_USERS[username] == "manager"
            user.save()
        users[username] = user
    manager = users["demo-manager"]
    study = Study.objects.filter(name=DEMO_STUDY_NAME, created_by=manager).first()
    if study is None:
        study = study_create(
            creator=manager,
            name=DEMO_STUDY_NAME,
            description="Our own prompts, answered by the default policy model. Compare pairs and train a reward model.",
            guidelines=DEMO_GUIDELINES,
            overlap=1,
        )
    for username, role in DEMO_USERS.items():
        if role != "manager":
            membership_add(study=study, username=username, role=role)
    records = [r for r in demo_records(responses_file) if len(r["responses"]) >= 2]
    imported = items_import(study=study, lines=[json.dumps(r) for r in records])
    return Demo(study=study, imported=imported, users={u: DEMO_USERS[u] for u in users})
