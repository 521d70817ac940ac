"""Type-check the package with mypy (settings in pyproject.toml's [tool.mypy]).

The package's folders (cli/, export/, ...) are installed as ``sdrt.*`` through setuptools' package-dir
mapping, which mypy cannot follow from the editable install: this lays the same names out as symbolic
links in a scratch folder and checks ``-p sdrt`` there.

    python tools/typecheck.py            # the whole package
    python tools/typecheck.py runtime    # one layer (errors elsewhere are not shown)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "export", "runtime", "schedulers", "serve")


def main(argv: list[str]) -> int:
    wanted = argv or list(PACKAGES)
    with tempfile.TemporaryDirectory(prefix="sdrt-typecheck-") as scratch:
        package = Path(scratch) / "sdrt"
        package.mkdir()
        (package / "__init__.py").write_text("", encoding="utf-8")
        for name in PACKAGES:
            (package / name).symlink_to(ROOT / name, target_is_directory=True)
        modules = [arg for name in wanted for arg in ("-p", f"sdrt.{name}")]
        command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *modules]
        return subprocess.call(command, cwd=scratch)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
