"""Alignment (the alignment lessons): preference data, a reward model trained on rankings, direct
preference optimisation, and the pieces of PPO with a KL penalty to a reference model. Every
method trains through the one loop of ``train.trainer`` with its own batches and objective.
"""
