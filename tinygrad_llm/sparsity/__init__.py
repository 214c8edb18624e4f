"""Sparsity (lesson 14): magnitude pruning with masks held through training, structured pruning of
heads and neurons, sparse storage. Imports from ``train`` and the areas below it; a sibling of
``compress`` (quantization and distillation), which it does not import.
"""
