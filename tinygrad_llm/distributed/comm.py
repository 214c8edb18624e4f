"""Collectives over ranks, on NumPy buffers (lesson 19).

MPI runs the same script as R processes (``mpiexec -n R python script.py``), on one machine or
across hosts; each process is a *rank* that knows its number and R. Ranks exchange arrays through
*collectives*, each called by every rank:

* all-reduce: every rank ends with the sum of every rank's buffer;
* reduce-scatter: the sum is cut into R equal parts and rank r keeps part r;
* all-gather: every rank contributes its part and every rank ends with all of them;
* broadcast: rank 0's buffer is copied to every rank.

Everything goes through MPI's buffer interface (capitalised ``Allreduce`` ...), which sends the
array's bytes as they are; the lower-case ``allreduce`` would pickle Python objects, slower and
never used here. ``bytes_sent`` counts what a rank hands to the collectives (a ring all-reduce
of n values sends 2 (R - 1)/R n of them), so the lessons can compare with theory.
"""

from __future__ import annotations

import numpy as np

EXTRA_HINT = 'MPI is not installed: pip install -e ".[distributed]" (mpi4py and mpich)'


class Communicator:
    """The collectives the trainers use. ``SingleProcess`` and ``MPICommunicator`` implement it."""

    rank: int = 0
    size: int = 1

    def __init__(self) -> None:
        self.bytes_sent = 0

    def allreduce_(self, buffer: np.ndarray) -> np.ndarray:
        """Sum ``buffer`` over ranks, in place."""
        raise NotImplementedError

    def reduce_scatter(self, buffer: np.ndarray) -> np.ndarray:
        """The sum over ranks of ``buffer`` (its length a multiple of ``size``), part ``rank`` only."""
        raise NotImplementedError

    def allgather_(self, part: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Every rank's ``part`` in rank order, into ``out`` (``size`` times as long)."""
        raise NotImplementedError

    def broadcast_(self, buffer: np.ndarray, root: int = 0) -> np.ndarray:
        """``root``'s buffer on every rank, in place."""
        raise NotImplementedError

    def barrier(self) -> None:
        pass

    def _count(self, values: int, itemsize: int) -> None:
        # a ring collective passes each value on R - 1 times out of R
        self.bytes_sent += values * itemsize * (self.size - 1) // self.size


class SingleProcess(Communicator):
    """One rank: every collective is the identity, and nothing is sent."""

    def allreduce_(self, buffer):
        return buffer

    def reduce_scatter(self, buffer):
        return buffer.copy()

    def allgather_(self, part, out):
        out[...] = part
        return out

    def broadcast_(self, buffer, root=0):
        return buffer


class MPICommunicator(Communicator):
    """The collectives of an ``mpi4py`` communicator (``MPI.COMM_WORLD`` by default)."""

    def __init__(self, comm=None) -> None:
        super().__init__()
        mpi = _mpi()
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce_(self, buffer):
        _check_buffer(buffer)
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        self._count(2 * buffer.size, buffer.itemsize)
        return buffer

    def reduce_scatter(self, buffer):
        _check_buffer(buffer)
        if buffer.size % self.size:
            raise ValueError(f"reduce_scatter needs a length divisible by {self.size} ranks, got {buffer.size}")
        part = np.empty(buffer.size // self.size, dtype=buffer.dtype)
        self.comm.Reduce_scatter_block(buffer, part, op=self._mpi.SUM)
        self._count(buffer.size, buffer.itemsize)
        return part

    def allgather_(self, part, out):
        _check_buffer(part)
        _check_buffer(out)
        if out.size != part.size * self.size:
            raise ValueError(f"allgather of {part.size} values from {self.size} ranks needs {part.size * self.size}, "
                             f"got a buffer of {out.size}")
        self.comm.Allgather(part, out)
        self._count(out.size, out.itemsize)
        return out

    def broadcast_(self, buffer, root=0):
        _check_buffer(buffer)
        self.comm.Bcast(buffer, root=root)
        return buffer

    def barrier(self):
        self.comm.Barrier()


def world() -> Communicator:
    """The communicator of this run: MPI's world when the script was started by ``mpiexec`` with
    more than one rank, else ``SingleProcess``. Asking for MPI without mpi4py raises one clear line."""
    try:
        mpi = _mpi()
    except ImportError:
        if launched_ranks() > 1:  # started by mpiexec, but this Python cannot talk MPI
            raise
        return SingleProcess()
    return MPICommunicator() if mpi.COMM_WORLD.Get_size() > 1 else SingleProcess()


def launched_ranks() -> int:
    """How many ranks the launcher started, read from its environment (1 when not under mpiexec)."""
    import os

    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def _mpi():
    try:
        from mpi4py import MPI  # optional: the "distributed" extra
    except ImportError as error:
        raise ImportError(EXTRA_HINT) from error
    return MPI


def _check_buffer(buffer: np.ndarray) -> None:
    if not isinstance(buffer, np.ndarray) or not buffer.flags.c_contiguous:
        raise TypeError("collectives take C-contiguous NumPy arrays (their bytes are sent as they are)")
