"""Errors shared by the training loops."""


class TrainingStopped(Exception):
    """Training ended early because the caller's ``should_stop()`` returned True; nothing saved."""
