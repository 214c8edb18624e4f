"""Distributed training (lesson 19): data parallelism and ZeRO over MPI.

``comm`` wraps MPI (``mpi4py``, imported only when a communicator is asked for) behind a few
buffer-based collectives, with a one-process stand-in; ``ddp`` averages gradients over ranks in
flat float32 buckets; ``zero`` shards the optimizer state (stage 1) and the gradients (stage 2).
Imports from ``core``, ``model`` and ``train``.
"""
