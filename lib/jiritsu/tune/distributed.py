"""The same grid on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

The job (settings + candles) is scattered to the workers once; each task runs one chunk of
candidates with :func:`jiritsu.tune.grid.run_candidate`, and the results are put back in
candidate order, so a cluster returns exactly what a local run returns. Workers need this
package installed (same version); they compile the kernel once each (disk-cached).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jiritsu.tune.grid import Candidate, GridJob

CHUNK = 8


def _dask_chunk(job: GridJob, items: list[tuple[int, dict[str, Any]]]) -> list[Candidate]:
    from jiritsu.tune.grid import run_candidate

    return [run_candidate(job, i, p) for i, p in items]


def run_on_dask(
    job: GridJob,
    items: list[tuple[int, dict[str, Any]]],
    scheduler: Any,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Candidate]:
    """Run ``items`` on the cluster at ``scheduler`` (an address, or a ``distributed.Client``)."""
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler, timeout="30s") if own else scheduler
    try:
        [remote] = client.scatter([job], broadcast=True)
        chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        futures = [
            client.submit(_dask_chunk, remote, chunk, pure=False, key=f"jiritsu-grid-{n}-{id(job)}")
            for n, chunk in enumerate(chunks)
        ]
        done: list[Candidate] = []
        for fut in as_completed(futures):
            done.extend(fut.result())
            if progress:
                progress(len(done), len(items))
        done.sort(key=lambda c: c.index)
        return done
    finally:
        if own:
            client.close()
