"""Errors shared by the training loops."""


class TrainingStopped(Exception):
    """Training ended early because the caller's ``should_stop()`` returned True; nothing saved."""


class NotEnoughLabels(ValueError):
    """Too few labelled examples to train or evaluate; the message says how many it has and needs."""
