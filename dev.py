#!/usr/bin/env python3
"""Two commands for a fresh clone, needing only Python 3.11+:

    python3 dev.py serve    # install into .venv (first run), then start the receiver
    python3 dev.py test     # install test tools into .venv, then run every test and mypy

Any other arguments are passed on: ``python3 dev.py events list``, ``python3 dev.py test -k ingest``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(extras: str) -> None:
    """Create .venv and install the package (editable) with ``extras`` when out of date."""
    if sys.version_info < (3, 11):
        sys.exit(f"hotglue-webhooks needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    target = f".[{extras}]" if extras else "."
    print(f"installing hotglue-webhooks{f'[{extras}]' if extras else ''} into {VENV} ...", file=sys.stderr)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test":
        ensure_venv("test")
        tests = subprocess.run([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)
        if tests.returncode != 0 or rest:
            return tests.returncode
        return subprocess.run([str(PYTHON), "-m", "mypy"], cwd=ROOT).returncode
    ensure_venv("")
    os.execv(str(BIN / "hotglue-webhooks"), [str(BIN / "hotglue-webhooks"), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
