"""Evaluation (lesson 09 onwards): perplexity, text and classifier metrics, answer scoring. Imports from
``core``, ``text`` and ``model``.
"""
