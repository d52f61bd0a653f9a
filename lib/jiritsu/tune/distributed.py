"""The same grid on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

The job (settings + candles) is scattered to the workers once; each task runs one chunk of
candidates with the ``run`` it is given (:func:`jiritsu.tune.grid.run_candidate`, passed in so
this module does not import the grid back), and the results are put back in
candidate order, so a cluster returns exactly what a local run returns. Workers need this
package installed (same version); they compile the kernel once each (disk-cached).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

CHUNK = 8


class _Indexed(Protocol):
    @property
    def index(self) -> int: ...


Job = TypeVar("Job")
Result = TypeVar("Result", bound=_Indexed)
Items = list[tuple[int, dict[str, Any]]]


def _dask_chunk(
    run: Callable[[Job, int, dict[str, Any]], Result], job: Job, items: Items
) -> list[Result]:
    return [run(job, i, p) for i, p in items]


def run_on_dask(
    run: Callable[[Job, int, dict[str, Any]], Result],
    job: Job,
    items: Items,
    scheduler: Any,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """``run(job, index, params)`` for every item on the cluster at ``scheduler`` (an address,
    or a ``distributed.Client``); results in item order (each has an ``index``)."""
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler, timeout="30s") if own else scheduler
    try:
        [remote] = client.scatter([job], broadcast=True)
        chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        futures = [
            client.submit(
                _dask_chunk, run, remote, chunk, pure=False, key=f"jiritsu-grid-{n}-{id(job)}"
            )
            for n, chunk in enumerate(chunks)
        ]
        done: list[Result] = []
        for fut in as_completed(futures):
            done.extend(fut.result())
            if progress:
                progress(len(done), len(items))
        done.sort(key=lambda c: c.index)
        return done
    finally:
        if own:
            client.close()
