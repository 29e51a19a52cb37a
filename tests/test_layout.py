"""The import direction syndicate → subscribers → feeds is part of the design."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = {
    "feeds": ["flask", "werkzeug", "syndicate", "config", "subscribers", "flask_babel"],
    "subscribers": ["flask", "werkzeug", "syndicate", "config", "flask_babel"],
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_core_packages_do_not_import_the_web_side(package: str) -> None:
    # A fresh interpreter, so what other tests imported does not count.
    code = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted({{n.split('.')[0] for n in sys.modules}} & set({FORBIDDEN[package]!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{package} pulls in {out.stdout.strip()}"


def test_importing_the_service_does_no_work(tmp_path) -> None:
    """No secret key, database or directory is created by an import (only by create_app/CLI)."""
    instance = tmp_path / "instance"
    code = "import syndicate, syndicate.cli, syndicate.scheduler, syndicate.server"
    env = {"SYNDICATE_INSTANCE_PATH": str(instance), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert not instance.exists()
