"""Training (lesson 07): optimizers and schedules, batch sources and the one training loop every
objective uses. Imports from ``core``, ``text`` and ``model``.
"""
