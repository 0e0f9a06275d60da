"""Reward models: losses, the scalar model, training and scoring."""
