"""TRL interop: rows from to_trl_preference_row drive one DPOTrainer step on a tiny causal LM."""

import pytest

from learning.data import PreferencePair, to_trl_preference_row
from tests.tiny_models import one_dpo_step


@pytest.mark.filterwarnings("ignore::FutureWarning")  # trl sets transformers' renamed gradient_checkpointing
def test_trl_rows_train_a_tiny_llama_for_one_dpo_step(tmp_path):
    pairs = [
        PreferencePair(
            prompt=[{"role": "user", "content": f"Greet me politely ({i})."}],
            chosen="Hello, lovely to meet you!",
            rejected="Go away.",
            margin=1 / 3,
            group=str(i),
        )
        for i in range(4)
    ]
    output, moved = one_dpo_step([to_trl_preference_row(pair) for pair in pairs], tmp_path)
    assert output.global_step == 1
    assert output.training_loss == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 0: -log σ(0)
    assert moved
