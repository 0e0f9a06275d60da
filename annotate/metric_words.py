"""What a training run's metric names mean, in words: a label and a one-line explanation each.

The trainers in `learning/reward/` name their metrics for code (`heldout_ece`); the run page and
the model versions table show these words instead, with the name kept for whoever reads the API.
A name missing here is shown as it is.
"""

from __future__ import annotations

from typing import NamedTuple


class MetricWords(NamedTuple):
    label: str
    explanation: str


METRIC_WORDS: dict[str, MetricWords] = {
    # Reward models (pairwise votes and rankings)
    "heldout_accuracy": MetricWords(
        "Held-out accuracy",
        "Share of held-out comparisons where the model scores the preferred response higher; 0.5 is chance.",
    ),
    "heldout_accuracy_ci95_low": MetricWords(
        "Held-out accuracy, 95% low", "Lower end of the Wilson 95% interval of held-out accuracy."
    ),
    "heldout_accuracy_ci95_high": MetricWords(
        "Held-out accuracy, 95% high", "Upper end of the Wilson 95% interval of held-out accuracy."
    ),
    "heldout_log_likelihood": MetricWords(
        "Held-out log-likelihood",
        "Mean log-probability the model gives the held-out choices; closer to 0 is better.",
    ),
    "heldout_davidson_log_likelihood": MetricWords(
        "Held-out log-likelihood with ties",
        "As the log-likelihood, with ties scored as ties (Davidson); closer to 0 is better.",
    ),
    "heldout_ece": MetricWords(
        "Calibration error",
        "How far the model's confidence is from how often it is right on held-out comparisons; 0 is perfectly calibrated.",
    ),
    "per_annotator_agreement": MetricWords(
        "Agreement per annotator",
        "For each annotator (by pseudonym), held-out choices the model agrees with, of those compared.",
    ),
    "member_heldout_accuracy": MetricWords(
        "Held-out accuracy per ensemble member", "Each member's own held-out accuracy; the ensemble averages them."
    ),
    "train_accuracy": MetricWords(
        "Training accuracy", "Accuracy on the comparisons it trained on; far above held-out accuracy means overfitting."
    ),
    "train_loss": MetricWords("Training loss", "Mean loss over the last training steps; lower fits the training labels closer."),
    "n_train": MetricWords("Training examples", "Pairs, rankings or responses the model trained on."),
    "n_eval": MetricWords("Held-out examples", "Examples kept out of training to measure the model on."),
    "n_eval_comparisons": MetricWords(
        "Held-out comparisons", "Comparisons the held-out figures are measured on; below about 30 they say little."
    ),
    "n_ties": MetricWords("Ties trained on", "Tied pairs the model learned from (Davidson loss only)."),
    "n_eval_ties": MetricWords("Held-out ties", "Tied pairs among the held-out comparisons."),
    "ties_dropped": MetricWords("Ties left out", "Ties not used: Bradley-Terry cannot learn from them (loss davidson can)."),
    "n_rankings": MetricWords("Rankings trained on", "Whole rankings learned from (Plackett-Luce)."),
    "rankings_dropped": MetricWords("Rankings left out", "Rankings with everything tied: no order to learn from."),
    "ranking_pairs": MetricWords("Pairs from rankings", "Pairs made by splitting rankings (ranking_loss split_pairs)."),
    "n_truncated": MetricWords(
        "Examples cut to fit", "Examples longer than max_length tokens, shortened (oldest prompt turns first) to fit."
    ),
    "loss": MetricWords("Loss", "bt: Bradley-Terry, ties left out; davidson: ties learned as ties."),
    "tie_nu": MetricWords("Tie tendency (ν)", "Davidson's learned tendency to call a pair a tie; higher means more ties."),
    "ensemble_size": MetricWords("Ensemble size", "Reward models trained and averaged."),
    "steps": MetricWords("Training steps", "Optimiser steps taken over all epochs."),
    "train_seconds": MetricWords("Training time (s)", "Seconds spent in training steps, loading excluded."),
    "seconds": MetricWords("Run time (s)", "Seconds from start to saved model."),
    "pairs_per_second": MetricWords("Throughput", "Comparisons processed per second of training."),
    # Span models
    "segment_f1": MetricWords(
        "Span F1 per category",
        "Per category, how well the predicted error segments match the marked ones on held-out responses; 1 is perfect.",
    ),
    "segment_precision": MetricWords("Span precision per category", "Share of segments flagged with a category that have it."),
    "segment_recall": MetricWords("Span recall per category", "Share of segments with a category that the model flags."),
    "segment_positive_rate": MetricWords(
        "Segments with the error",
        "Share of held-out segments marked with each category; always flagging it would score F1 2p/(1+p).",
    ),
    "n_train_segments": MetricWords("Training segments", "Sentences (or sub-sentences) the span model trained on."),
    "n_eval_segments": MetricWords("Held-out segments", "Segments the span figures are measured on."),
    # Rating models
    "heldout_mae": MetricWords(
        "Rating error per aspect", "Per aspect, mean distance between predicted and given ratings (1-5) on held-out responses."
    ),
    "heldout_mean_mae": MetricWords("Rating error", "The rating error averaged over aspects; 0 is exact."),
    "heldout_spearman": MetricWords(
        "Rank correlation per aspect", "Per aspect, how well predicted ratings order held-out responses; 1 is perfect."
    ),
    # Features runs
    "responses": MetricWords("Responses", "The study's responses whose features the cache now holds."),
    "computed": MetricWords("Computed", "Features this run computed; the others were already cached for this model."),
    "dims": MetricWords("Dimensions", "Length of each feature vector (the model's hidden size) before any projection."),
    "rewards_computed": MetricWords(
        "Rewards scored", "Responses this run scored with the reward model; the others were already cached for it."
    ),
    # Selection runs
    "picked": MetricWords("Picked", "The queries chosen for the round (their ids), best first."),
    "scores": MetricWords("Scores", "What each pick was chosen on (log-det gain, uncertainty); random picks score 0."),
    "chosen_by": MetricWords("Chosen by", "The strategy, or random where it needs a model and none was trained yet."),
    "pool": MetricWords("Pool", "Queries it could choose from: never chosen by a round and never labelled."),
    "left_out": MetricWords(
        "Left out", "Pool queries not offered: added after the round's features job ran; the next round offers them."
    ),
}


def metric_words(name: str) -> MetricWords:
    """The label and explanation for a metric name; an unknown name is its own label, unexplained."""
    return METRIC_WORDS.get(name, MetricWords(name, ""))
