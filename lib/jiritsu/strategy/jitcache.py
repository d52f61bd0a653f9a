"""Where the compiled kernel is cached on disk, keyed by the source it was compiled from.

numba checks a cached function against its OWN source file only. The kernel's functions inline
their callees from other modules (sizing, split, tpsl, exits, the fill model) and freeze the
module constants they read (the parameter and state slots of :mod:`jiritsu.strategy.params`)
into the machine code. After an upgrade or a ``git pull`` that changed one of those modules but
not the caller's file, numba would load the old machine code and the backtester, the tuner and
the simulation would trade by the old rules without a word. So the cache lives in a directory
named after a hash of every source the kernel is built from (and the numba and Python
versions): new source, new directory, fresh compile.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
# Every source the compiled kernel may inline or read constants from.
KERNEL_SOURCES: tuple[Path, ...] = (
    _PACKAGE / "strategy",
    _PACKAGE / "sim",
    _PACKAGE / "indicators.py",
)


def source_fingerprint(sources: Iterable[Path] = KERNEL_SOURCES) -> str:
    """A short hash of the ``.py`` files under ``sources`` (names and contents) and of the
    numba and Python versions the machine code is for."""
    import numba

    digest = hashlib.sha256(f"{numba.__version__} {sys.version}".encode())
    for root in sources:
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(root.parent)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """``NUMBA_CACHE_DIR`` when set (a read-only install; see
    :func:`jiritsu.backtest.runner.ensure_cache_dir`), else the strategy package's
    ``__pycache__``."""
    configured = os.environ.get("NUMBA_CACHE_DIR")
    return Path(configured) if configured else _PACKAGE / "strategy" / "__pycache__"


@contextmanager
def fingerprinted_cache(enabled: bool = True) -> Iterator[Path | None]:
    """Within the block, functions decorated with ``numba.njit(cache=True)`` keep their cache
    under ``<cache_root>/jit-<fingerprint>``. numba reads the directory when a function is
    decorated, so the setting is restored afterwards without affecting them."""
    if not enabled:
        yield None
        return
    from numba.core import config

    # CACHE_DIR is set by numba's config module at run time, so it is reached by name.
    target = cache_root() / f"jit-{source_fingerprint()}"
    previous = getattr(config, "CACHE_DIR", "")
    setattr(config, "CACHE_DIR", str(target))  # noqa: B010
    try:
        yield target
    finally:
        setattr(config, "CACHE_DIR", previous)  # noqa: B010
