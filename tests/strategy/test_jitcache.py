"""The compiled kernel's disk cache follows its sources: an upgrade never runs old machine code."""

from __future__ import annotations

import ast
import importlib
import shutil
from pathlib import Path

import pytest

from jiritsu.strategy import jitcache, kernel


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "jiritsu"
    for source in jitcache.KERNEL_SOURCES:
        if source.is_dir():
            shutil.copytree(source, tree / source.name, ignore=shutil.ignore_patterns("__py*"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / source.name)
    return tree


def test_a_change_to_any_kernel_source_moves_the_cache(tmp_path: Path) -> None:
    """numba alone would keep the cached ``simulate`` when only ``params.py`` (whose slot
    numbers it froze in) or ``sizing.py`` (which it inlined) changed."""
    tree = _copy(tmp_path)
    sources = [tree / s.name for s in jitcache.KERNEL_SOURCES]
    before = jitcache.source_fingerprint(sources)
    assert jitcache.source_fingerprint(sources) == before
    for changed in ("strategy/params.py", "strategy/sizing.py", "sim/fills.py", "indicators.py"):
        path = tree / changed
        original = path.read_bytes()
        path.write_bytes(original + b"\n# one more line\n")
        assert jitcache.source_fingerprint(sources) != before, changed
        path.write_bytes(original)
    assert jitcache.source_fingerprint(sources) == before


def _jiritsu_imports(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__ or "").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jiritsu"):
            found.add(node.module or "")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jiritsu")}
    return found


def test_every_module_the_kernel_compiles_or_reads_is_fingerprinted() -> None:
    """A kernel function moved to (or importing from) a module outside the fingerprint would
    bring the stale-cache bug back: this test names it."""
    modules = {name for name, _ in kernel._JIT_ORDER} | {"jiritsu.sim.fills"}
    for name in list(modules):
        modules |= _jiritsu_imports(name)
    roots = [s.resolve() for s in jitcache.KERNEL_SOURCES]
    for name in sorted(modules):
        path = Path(importlib.import_module(name).__file__ or "").resolve()
        assert any(path == r or r in path.parents for r in roots), name


def test_the_compiled_kernel_caches_under_its_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from numba.core import config

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    before = config.CACHE_DIR
    kernel.compiled.cache_clear()  # an earlier test's kernel was decorated elsewhere
    compiled = kernel.compiled(cache=True)
    kernel.compiled.cache_clear()  # later tests get the default cache, not this tmp dir
    assert config.CACHE_DIR == before
    assert compiled.floor_steps(1.0, 0.25) == 4.0  # compiles one function and caches it
    target = tmp_path / f"jit-{jitcache.source_fingerprint()}"
    assert any(target.rglob("*.nbi")), list(tmp_path.rglob("*"))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
