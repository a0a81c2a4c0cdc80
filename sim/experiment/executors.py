"""Where sweep runs execute: in this process, in a local process pool, or on Dask.

Every executor has one method, :meth:`Executor.map`: apply a picklable top-level
function to every item and yield ``(item, result)`` pairs as they complete, in any
order. ``result`` is the function's return value, or the exception that stopped
the item from finishing *in the executor* (a worker process that died, a Dask
worker lost with its machine). Exceptions raised by the function itself are the
function's business: sweeps catch them inside the run and record them, so
``map`` only ever reports infrastructure failures.

Results travel back to the calling process, which writes them: workers need the
same hcsim installed, but no shared filesystem.
"""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import Self, TypeVar

from sim.errors import HcsimError

__all__ = ["DaskExecutor", "Executor", "ProcessExecutor", "SerialExecutor", "make_executor"]

T = TypeVar("T")
R = TypeVar("R")


class Executor(ABC):
    """Runs a function over items; use as a context manager (``with make_executor() as ex``)."""

    #: a short description for progress lines, e.g. "4 local processes"
    description: str = ""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        """Yield ``(item, fn(item))`` as each finishes (or ``(item, exception)`` if it was lost)."""

    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Run every item in this process, in order (for debugging and small sweeps)."""

    description = "this process"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        for item in items:
            yield item, fn(item)


def _ignore_sigint() -> None:
    # Ctrl-C goes to the whole process group; the parent handles it and stops the
    # pool, so workers should not each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessExecutor(Executor):
    """A pool of local worker processes (``concurrent.futures.ProcessPoolExecutor``).

    Args:
        workers: number of processes; default: the CPUs this process may use.
    """

    def __init__(self, workers: int | None = None) -> None:
        from concurrent.futures import ProcessPoolExecutor

        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.workers = workers
        self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_ignore_sigint)
        self.description = f"{self.workers} local process{'es' if self.workers != 1 else ''}"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        from concurrent.futures import as_completed

        futures = {self._pool.submit(fn, item): item for item in items}
        try:
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], (future.result() if error is None else error)
        except BaseException:
            self.close(kill=True)
            raise

    def close(self, kill: bool = False) -> None:
        """Stop the pool; ``kill`` also terminates runs in progress (after Ctrl-C)."""
        if kill:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not kill, cancel_futures=True)


def _worker_version() -> str:
    from sim import __version__

    return __version__


class DaskExecutor(Executor):
    """Runs on a Dask distributed cluster: an existing one, or a LocalCluster started here.

    Args:
        address: scheduler address (``tcp://host:8786``) of a running cluster; None
            starts a LocalCluster.
        local_workers: workers of the LocalCluster (one thread each).
        processes: LocalCluster workers as processes (True) or threads in this
            process (False: quicker to start, shares the GIL).

    Raises:
        HcsimError: dask is not installed, the scheduler cannot be reached, or a
            worker runs another hcsim version.
    """

    def __init__(self, address: str | None = None, local_workers: int = 2, processes: bool = True) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise HcsimError("Dask is not installed: pip install 'hcsim[dask]' (dask[distributed])") from None
        self._cluster = None
        try:
            if address is None:
                self._cluster = LocalCluster(
                    n_workers=local_workers,
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                    silence_logs=40,  # logging.ERROR: keep the progress bar readable
                )
                self.client = Client(self._cluster)
                kind = "processes" if processes else "threads"
                self.description = f"Dask LocalCluster, {local_workers} worker {kind}"
            else:
                self.client = Client(address, timeout="10s")
                workers = len(self.client.scheduler_info().get("workers", {}))
                self.description = f"Dask cluster {address}, {workers} workers"
        except OSError as exc:
            self.close()
            raise HcsimError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self._check_versions()

    def _check_versions(self) -> None:
        from sim import __version__

        try:
            versions = self.client.run(_worker_version)
        except Exception as exc:  # noqa: BLE001 - a worker's error comes back as is, of any type (ImportError, ...)
            self.close()
            raise HcsimError(f"Dask workers cannot run hcsim ({type(exc).__name__}: {exc}); install hcsim on every worker") from None
        other = {w: v for w, v in versions.items() if v != __version__}
        if other:
            self.close()
            raise HcsimError(f"Dask workers run another hcsim version than this one ({__version__}): {other}")

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R | BaseException]]:
        from distributed import as_completed

        items = list(items)
        futures = [self.client.submit(fn, item, pure=False) for item in items]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                item = items[index[future.key]]
                try:
                    yield item, future.result()
                except Exception as exc:  # noqa: BLE001 - the task's own error (any type), KilledWorker, CancelledError, lost data
                    yield item, exc
                future.release()
        except BaseException:
            self.client.cancel(futures)
            raise

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None  # type: ignore[assignment]
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(
    workers: int | None = None,
    scheduler: str | None = None,
    dask_local: int | None = None,
) -> Executor:
    """The executor the CLI options ask for.

    Args:
        workers: local processes (1 = run serially in this process).
        scheduler: Dask scheduler address; wins over ``workers``.
        dask_local: start a Dask LocalCluster with this many worker processes.
    """
    if scheduler and dask_local:
        raise HcsimError("give either --scheduler or --dask-local, not both")
    if scheduler:
        return DaskExecutor(address=scheduler)
    if dask_local:
        return DaskExecutor(local_workers=dask_local)
    if workers == 1:
        return SerialExecutor()
    return ProcessExecutor(workers)
