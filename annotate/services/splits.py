"""A study's fixed evaluation split: each prompt is on the train or the eval side, for good.

Every reward model of a study (every version, kind and loss, and every later round) is scored
on the labels of the same eval prompts, so their held-out figures compare like with like. A
prompt's side comes from a hash of the study and the prompt's external id
(``learning.data.fixed_split``): it depends on nothing else, so prompts that arrive later get
theirs without moving anyone's, and it is stored the first time a training run needs it.
"""

from __future__ import annotations

from django.db import transaction

from annotate.models import Prompt, Study

# The share of a study's prompts held out for evaluation.
EVAL_FRACTION = 0.2


@transaction.atomic
def study_split_assign(*, study: Study) -> int:
    """Give every prompt of the study that has no split yet its side; returns how many were given one.

    Rows are locked while they are given a side, so two runs starting at once agree (and the
    hash would give them the same answer anyway).
    """
    from learning.data import fixed_split

    prompts = list(Prompt.objects.select_for_update().filter(study=study, split="").only("id", "external_id", "split"))
    for prompt in prompts:
        prompt.split = fixed_split(prompt.external_id, seed=study.pk, eval_fraction=EVAL_FRACTION)
    Prompt.objects.bulk_update(prompts, ["split"], batch_size=1000)
    return len(prompts)
