"""The architecture, checked: no import runs the wrong way (import-linter contracts in
pyproject.toml) — and a forbidden import would be caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint(root: Path, src: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts, the package found under ``src``."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--config", str(root / "pyproject.toml"),
         "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip


def test_every_contract_is_kept() -> None:
    done = lint(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("treaty/engine.py", "import shieldwall.council.store", "the core does no I/O"),
        ("wire/messages.py", "import sqlite3", "the core does no I/O"),
        (
            "agent/client.py",
            "import shieldwall.council.auth",
            "the agent never imports the council",
        ),
        ("drill/score.py", "import shieldwall.loopback.alliance", "the drill uses the core"),
        ("detect/rule.py", "import shieldwall.treaty.terms", "know nothing of each other"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(ROOT / "src" / "shieldwall", tmp_path / "src" / "shieldwall",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "shieldwall" / module
    text = target.read_text()
    head, _, rest = text.partition("from __future__ import annotations\n")
    target.write_text(f"{head}from __future__ import annotations\n{line}  # noqa\n{rest}")
    done = lint(tmp_path, tmp_path / "src")
    assert done.returncode != 0
    broken = [ln for ln in done.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(contract in ln for ln in broken), done.stdout  # (and those that import it)
