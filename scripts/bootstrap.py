"""Put a pinned uv into .tools/ using nothing but the standard library.

The quick start promises a machine with only python3 and git. Debian and Ubuntu ship python3
without ensurepip (package python3-venv), so when `venv` cannot install pip we fetch pip's wheel
from the package index and run it straight from the zip to install uv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

UV_VERSION = "0.13.9"
PIP_WHEEL = "pip-24.3.1-py3-none-any.whl"
INDEX = os.environ.get("JIRITSU_BOOTSTRAP_INDEX", "https://pypi.org/simple")
ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"


def _uv_path() -> Path:
    return TOOLS / "bin" / "uv"


def _fetch_pip_wheel(dest: Path) -> Path:
    if not INDEX.startswith("https://"):
        raise SystemExit(f"refusing a non-https package index: {INDEX}")
    req = urllib.request.Request(  # noqa: S310 - https checked above
        f"{INDEX}/pip/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - fixed https index
        files = json.load(resp)["files"]
    url = next(f["url"] for f in files if f["filename"] == PIP_WHEEL)
    target = dest / PIP_WHEEL
    with urllib.request.urlopen(url, timeout=120) as resp, open(target, "wb") as out:  # noqa: S310
        out.write(resp.read())
    return target


def main() -> int:
    uv = _uv_path()
    if uv.exists():
        got = subprocess.run([str(uv), "--version"], capture_output=True, text=True).stdout
        if UV_VERSION in got:
            print(uv)
            return 0
    py = TOOLS / "bin" / "python"
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(TOOLS)
        pip = [str(py), "-m", "pip"]
    except (subprocess.CalledProcessError, OSError):
        venv.EnvBuilder(with_pip=False, clear=True).create(TOOLS)
        wheel = _fetch_pip_wheel(Path(tempfile.mkdtemp()))
        pip = [str(py), str(wheel / "pip")]
    subprocess.run(
        [*pip, "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}"],
        check=True,
    )
    print(uv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
