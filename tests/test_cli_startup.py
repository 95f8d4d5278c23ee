"""The command line starts at once: ``import bootstrap.cli`` and every ``--help`` leave the heavy
libraries (torch, Snorkel, FastAPI, matplotlib, and spaCy, which imports torch through thinc)
unimported. Each check runs in a fresh interpreter: this test process has imported them all.

How long start-up takes is what ``benchmarks/cli_startup.py`` prints; here only what is imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "snorkel", "fastapi", "matplotlib", "spacy", "thinc", "scipy")


def imported_after(code: str) -> list[str]:
    """The HEAVY modules in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_library():
    assert imported_after("import bootstrap.cli") == []


def test_no_help_text_imports_a_heavy_library():
    code = """
        from typer.testing import CliRunner
        from bootstrap.cli import app
        from bootstrap.cli._util import DefaultCommandGroup
        import typer
        runner = CliRunner()
        commands = typer.main.get_command(app).commands
        assert len(commands) >= 9, commands
        for args in [["--help"], *([name, "--help"] for name in commands)]:
            result = runner.invoke(app, args)
            assert result.exit_code == 0 and "Usage" in result.output, (args, result.output)
    """
    assert imported_after(code) == []


def test_datasets_listed_without_a_heavy_library(tmp_path):
    from bootstrap.store import Store

    db = tmp_path / "bootstrap.db"
    with Store(db) as store:
        store.dataset_id("diseases", create=True)
    code = f"""
        from typer.testing import CliRunner
        from bootstrap.cli import app
        result = CliRunner().invoke(app, ["stats", "--db", {str(db)!r}])
        assert result.exit_code == 0 and "diseases" in result.output, result.output
    """
    assert imported_after(code) == []


@pytest.mark.parametrize("cli_module, library_module, name", [
    ("bootstrap.cli.train", "bootstrap.train", "DEFAULT_SCHEME"),
    ("bootstrap.cli.simulate", "bootstrap.simulate", "STRATEGIES"),
])
def test_values_written_out_for_a_fast_help_agree_with_the_library(cli_module, library_module, name):
    import importlib

    assert getattr(importlib.import_module(cli_module), name) == getattr(importlib.import_module(library_module), name)


def test_the_startup_benchmark_times_every_command(capsys):
    """``benchmarks/cli_startup.py`` runs (one repeat) and its figures are well-formed."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "cli_startup.py"
    spec = importlib.util.spec_from_file_location("cli_startup", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["seconds"]) == {"--help", "check --help", "check", "stats", "stats PATTERNS TEXTS"}
    for seconds in result["seconds"].values():
        assert 0 < seconds["fastest"] <= seconds["median"] and seconds["first"] > 0
