"""bootstrap report: a self-contained HTML page built from a real small dataset.

The dataset is the bundled DISEASE example answered from its gold file through a real Session,
plus one text that carries a <script> element; one real (tiny) model is trained from the
decisions and recorded as a handoff run, so the page shows the model beside the rules.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.gold import load_gold
from bootstrap.handoff import HandoffPolicy
from bootstrap.hashing import task_hash
from bootstrap.report import ReportOptions, render_entities, report_data, write_report
from bootstrap.session import Session, SessionConfig
from bootstrap.table import build_table
from bootstrap.store import Store
from bootstrap.train import train_from_decisions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diseases"
HOSTILE = 'Two boys with cystic fibrosis <script>alert("owned")</script> and <img src=x onerror=alert(1)> were seen.'
DATASET = "diseases"
ANSWERS = 80
MARKUP_ANNOTATOR = "<u>bob</u>"
HOSTILE_QUESTIONS = 3


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of elements marked with data-* keys."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[tuple[str, str], dict[str, str]] = {}  # (row attribute, value) -> data-key -> text
        self.tiles: dict[str, str] = {}
        self._row: tuple[str, str] | None = None
        self._key: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "tr":
            marker = next(((name, value) for name, value in attrs if name.startswith("data-")), None)
            self._row = marker
            if marker is not None:
                self.rows[marker] = {}
        if "data-key" in attributes:
            self._key, self._text = attributes["data-key"], []

    def handle_endtag(self, tag):
        if self._key is not None and tag in ("td", "b"):
            text = "".join(self._text).strip()
            if tag == "td" and self._row is not None:
                self.rows[self._row][self._key] = text
            elif tag == "b":
                self.tiles[self._key] = text
            self._key = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._key is not None:
            self._text.append(data)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, answer_from_gold):
    """(db, pattern files, texts) of the example answered from gold, with one trained model recorded."""
    root = tmp_path_factory.mktemp("report")
    texts = root / "texts.jsonl"
    shutil.copy(EXAMPLE / "texts.jsonl", texts)
    with texts.open("a", encoding="utf8") as file:
        file.write(json.dumps({"text": HOSTILE, "meta": {"id": "hostile"}}) + "\n")
    markup_rule = root / "markup.jsonl"  # a rule whose id and matches are markup
    markup_rule.write_text(json.dumps({"label": "DISEASE", "id": "<marquee>markup</marquee>", "regex": "<script>[^<]*</script>"}) + "\n")
    patterns = [EXAMPLE / "patterns.jsonl", markup_rule]
    db = root / "bootstrap.db"
    config = SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never"))
    session = Session.from_files(patterns, texts, db=db, dataset=DATASET, config=config)
    gold = load_gold(EXAMPLE / "gold.jsonl")
    answer_from_gold(session, gold, ANSWERS)
    hostile_tasks = [  # the hostile text's questions, answered by an annotator whose name is markup too
        task_hash(*session.table.question(index)) for index in range(session.table.n_questions)
        if session.store.example(DATASET, session.table.question(index)[0])[0] == HOSTILE
    ]
    assert any("<script>" in HOSTILE[start:end] for _, start, end, _ in map(session.table.question, range(session.table.n_questions)))
    assert len(hostile_tasks) == HOSTILE_QUESTIONS  # "cystic fibrosis", "fibrosis" and the <script> element
    for task in hostile_tasks:
        session.answer(MARKUP_ANNOTATOR, task, "ignore")
    store = session.store
    tasks = list(store.export_tasks(DATASET, answers=("accept", "reject")))
    trained = train_from_decisions(spacy.blank("en"), tasks, root / "model", proposed=store.proposed_spans(DATASET), max_epochs=1)
    store.add_model_run(DATASET, len(tasks), trained["model"], {
        "model": trained["scores"]["held_out_decisions"], "rules": {"accuracy": 0.5}, "spans": None,
        "scheme": trained["scores"]["scheme"],
        "pipeline": {"name": "rules + ner", "path": str(trained["model"]), "trials": {
            "rules + ner": {"against": "rules", "confidence": 0.97}, "ner": {"against": "rules + ner", "confidence": 0.4}}},
    }, adopted=False)
    session.close()
    return db, patterns, texts


@pytest.fixture(scope="module")
def report(dataset, tmp_path_factory):
    db, patterns, texts = dataset
    output = tmp_path_factory.mktemp("out") / "report.html"
    with Store(db, create=False) as store:
        data = write_report(store, DATASET, patterns, texts, output, options=ReportOptions(sample=500))
    return output.read_text(encoding="utf8"), data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def test_report_holds_the_counts_the_store_holds(dataset, report):
    db, _, _ = dataset
    html, _ = report
    page = parse(html)
    with Store(db, create=False) as store:
        counts = store.counts(DATASET)
        stats = next(s for s in store.datasets() if s.name == DATASET)
    assert counts["total"] == ANSWERS + HOSTILE_QUESTIONS and counts["ignore"] == HOSTILE_QUESTIONS
    assert page.tiles["answers"] == f"{counts['total']:,}"
    assert page.tiles["examples"] == f"{stats.examples:,}" and stats.examples == 191
    assert page.tiles["questions"] == f"{stats.questions:,}"
    for answer in ("accept", "reject", "ignore"):
        assert page.tiles[answer] == f"{counts[answer]:,}"
    disease = page.rows[("data-label", "DISEASE")]
    assert {key: int(value) for key, value in disease.items()} == {**counts["labels"]["DISEASE"], "total": counts["total"]}
    assert page.rows[("data-annotator", "alice")] == {"decisions": str(ANSWERS)}
    assert page.rows[("data-annotator", MARKUP_ANNOTATOR)] == {"decisions": str(HOSTILE_QUESTIONS)}


def test_report_holds_every_rule_number_the_session_computes(dataset, report):
    db, patterns, texts = dataset
    html, _ = report
    page = parse(html)
    with Store(db, create=False) as store:
        lf_stats = Session(store, DATASET, build_table(patterns, texts)).lf_stats()  # what `bootstrap stats` prints
    assert len(lf_stats) > 14  # 14 rules and their boundary columns
    decided = 0
    for lf in lf_stats:
        row = page.rows[("data-rule", lf["name"])]
        assert row["coverage"] == f"{lf['coverage']:,}"
        assert row["overlaps"] == f"{lf['overlaps']:,}"
        assert row["conflicts"] == f"{lf['conflicts']:,}"
        assert row["precision"] == f"{lf['precision']:.2f}"
        interval = lf["from_decisions"]
        if interval["n"]:
            decided += 1
            assert row["from_decisions"] == f"{interval['estimate']:.2f} [{interval['low']:.2f}, {interval['high']:.2f}] n={interval['n']}"
        else:
            assert row["from_decisions"] == "–"
    assert decided >= 5


def test_report_shows_the_recorded_model_beside_the_rules(dataset, report):
    db, _, _ = dataset
    html, data = report
    page = parse(html)
    with Store(db, create=False) as store:
        run = store.model_runs(DATASET)[-1]
    row = page.rows[("data-decisions", str(run["decisions"]))]
    assert row["model_accuracy"] == f"{run['scores']['model']['accuracy']:.2f}" and row["rules_accuracy"] == "0.50"
    assert row["pipeline"] == "rules + ner (97% sure)"  # the pipeline to use, and how sure its last step was
    assert data["model"] == run["path"]
    assert data["samples"] and all(sample["model"] is not None for sample in data["samples"])
    assert html.count('class="who model"') == len(data["samples"]) == html.count('class="who rules"')
    same = [sample["rules"] == sample["model"] for sample in data["samples"]]
    assert not all(same) and same == sorted(same)  # texts where the two views differ come first
    assert data["plots"]["learning"] and data["plots"]["timeline"] and data["plots"]["precision"]


def test_report_is_self_contained_and_escapes_every_text(report):
    html, data = report
    page = parse(html)
    tags = [tag for tag, _ in page.tags]
    assert tags.count("html") == 1 and "script" not in tags and "link" not in tags and "iframe" not in tags
    assert "marquee" not in tags and "u" not in tags  # the rule id and the annotator name are shown as text
    assert "&lt;marquee&gt;markup&lt;/marquee&gt;" in html and "&lt;u&gt;bob&lt;/u&gt;" in html
    assert "img" in tags and "svg" not in tags
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in html or "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in html
    hostile_images = [attrs for tag, attrs in page.tags if tag == "img" and attrs.get("src") == "x"]
    assert not hostile_images and not any("onerror" in attrs for _, attrs in page.tags)
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in ("src", "href", "srcset", "action", "data", "poster", "xlink:href"):
                assert value.startswith("data:image/png;base64,"), (tag, name, value[:40])
    assert "http://" not in html and "https://" not in html and "url(" not in html
    assert any("&lt;script&gt;" in sample["rules"] for sample in data["samples"])  # the hostile text is in the sample


def test_displacy_rendering_escapes_labels_too():
    rendered = render_entities("a <b>bold</b> claim", [(0, 1, '<img src=x onerror="alert(1)">')], {})
    page = parse(rendered)
    assert [tag for tag, _ in page.tags if tag not in ("div", "mark", "span")] == []
    assert "&lt;img src=x" in rendered and "&lt;b&gt;bold&lt;/b&gt;" in rendered


def test_report_without_a_model_shows_the_rules_only(dataset, tmp_path):
    """A dataset with no model run: one rendering per text, and the page says why."""
    db, patterns, texts = dataset
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with Store(copy) as store:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM models")
        data = report_data(store, DATASET, patterns, texts, options=ReportOptions(sample=3))
    assert data["runs"] == [] and data["model"] is None and data["plots"]["learning"] is None
    assert len(data["samples"]) == 3 and all(sample["model"] is None for sample in data["samples"])


def test_report_command(dataset, tmp_path):
    db, patterns, texts = dataset
    output = tmp_path / "page.html"
    runner = CliRunner()
    result = runner.invoke(app, ["report", DATASET, *map(str, patterns), str(texts), "--db", str(db), "-o", str(output), "--sample", "2"])
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf8").startswith("<!DOCTYPE html>")
    missing = runner.invoke(app, ["report", "nope", *map(str, patterns), str(texts), "--db", str(db), "-o", str(output)])
    assert missing.exit_code == 1 and "no dataset 'nope'" in missing.output and "Traceback" not in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "DISEASE"}\n', encoding="utf8")
    broken = runner.invoke(app, ["report", DATASET, str(bad), str(texts), "--db", str(db), "-o", str(output)])
    assert broken.exit_code == 1 and f"{bad}:1:" in broken.output


def test_report_of_a_dataset_without_decisions(dataset, tmp_path):
    """Before the first answer: counts of zero, no decision plots, nothing to suggest, the rules' view of texts."""
    _, patterns, texts = dataset
    db = tmp_path / "fresh.db"
    Session.from_files(patterns, texts, db=db, dataset="fresh", config=SessionConfig(background_refit=False)).close()
    output = tmp_path / "fresh.html"
    with Store(db, create=False) as store:
        data = write_report(store, "fresh", patterns, texts, output, options=ReportOptions(sample=2))
    html = output.read_text(encoding="utf8")
    page = parse(html)
    assert page.tiles["answers"] == "0" and page.tiles["examples"] == "191"
    assert data["plots"]["timeline"] is None and data["plots"]["labels"] is None and data["plots"]["learning"] is None
    assert data["suggestions"]["total"] == 0 and "No decisions yet." in html and "No model trained yet" in html
    assert len(data["samples"]) == 2 and all(sample["decisions"] == [] for sample in data["samples"])
