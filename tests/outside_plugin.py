"""The outside plugin (examples/parks) as a department ships it: a wheel, built and installed
with pip into a folder of its own (put on PYTHONPATH of the processes that should see it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "parks"


def build_and_install(tmp: Path) -> Path:
    """``pip wheel`` the example, ``pip install`` the wheel into ``tmp/site``; returns the site."""
    wheels, site = tmp / "wheels", tmp / "site"

    def pip(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--no-deps", "--no-build-isolation"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    # built from a copy: setuptools writes build/ and *.egg-info next to the sources
    source = tmp / "source"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(source)], check=True)
    pip("wheel", "-w", str(wheels), str(source))
    (wheel,) = wheels.glob("huizhi_parks-*.whl")
    pip("install", "--target", str(site), str(wheel))
    return site
