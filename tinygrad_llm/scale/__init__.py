"""Scale (lessons 06 and 10 onwards): sizes, memory and compute arithmetic of models and their
training. Imports from ``core``, ``text`` and ``model``.
"""
