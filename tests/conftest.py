from pathlib import Path

import pytest
import spacy

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The gold data beside the project (``../shared/data``); tests read it, never copy it."""
    assert SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def nlp():
    return spacy.blank("en")


@pytest.fixture
def write(tmp_path):
    """Write an input file under tmp_path: a list of lines (dicts become JSON lines) or raw bytes."""
    import json

    def write(name: str, content) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            lines = [line if isinstance(line, str) else json.dumps(line) for line in content]
            path.write_text("".join(line + "\n" for line in lines), encoding="utf8")
        return path

    return write


@pytest.fixture(scope="session")
def gold_tasks(shared_data):
    """The first ``n`` tasks of a gold file, e.g. ``gold_tasks("ncbi-disease/dev.jsonl", 20)``."""
    import itertools
    import json

    def gold_tasks(name: str, n: int) -> list[dict]:
        with (shared_data / name).open(encoding="utf8") as file:
            return [json.loads(line) for line in itertools.islice(file, n)]

    return gold_tasks
