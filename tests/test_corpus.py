"""Reading texts: JSONL tasks, plain text, folders; streamed, with file:line errors."""

import contextlib
import itertools
import json
import warnings

import pytest

from bootstrap.corpus import read_texts
from bootstrap.errors import InputError, Notice, Problem
from bootstrap.hashing import input_hash


def test_jsonl_keeps_meta_and_every_other_key(write):
    path = write("texts.jsonl", [
        {"text": "Heart failure.", "meta": {"pmid": 1}, "id": "a", "_view_id": "ner"},
        {"text": "No meta here."},
    ])
    first, second = read_texts(path)
    assert first.text == "Heart failure."
    assert first.meta == {"pmid": 1}
    assert first.task == {"text": "Heart failure.", "meta": {"pmid": 1}, "id": "a", "_view_id": "ner"}
    assert first.source == f"{path}:1"
    assert first.input_hash == input_hash("Heart failure.")
    assert second.meta == {} and second.source == f"{path}:2"


def test_prodigy_tasks_with_spans_are_accepted(write):
    task = {"text": "Acute heart failure", "spans": [{"start": 6, "end": 19, "label": "DISEASE", "token_start": 1, "token_end": 2}], "answer": "accept"}
    [record] = read_texts(write("prodigy.jsonl", [task]))
    assert record.task["spans"] == task["spans"] and record.task["answer"] == "accept"


def test_plain_text_is_one_text_a_line(write):
    path = write("texts.txt", "\ufeffFirst text.\r\n\r\n  \nSecond  text, with  spaces \nlast line without newline".encode())
    records = list(read_texts(path))
    assert [r.text for r in records] == ["First text.", "Second  text, with  spaces ", "last line without newline"]
    assert [r.source for r in records] == [f"{path}:1", f"{path}:4", f"{path}:5"]
    assert records[1].meta == {"source": str(path), "line": 4}


def test_jsonl_bom_crlf_and_empty_lines(write):
    path = write("t.jsonl", b'\xef\xbb\xbf{"text": "one"}\r\n\r\n   \r\n{"text": "   "}\r\n{"text": "two"}\r\n')
    assert [(r.text, r.source.rpartition(":")[2]) for r in read_texts(path)] == [("one", "1"), ("two", "5")]


def test_a_folder_is_read_recursively_in_sorted_order_and_ignored_files_are_named(write, tmp_path):
    write("corpus/b.txt", ["b1", "b2"])
    write("corpus/a.jsonl", [{"text": "a1"}])
    write("corpus/sub/c.txt", ["c1"])
    write("corpus/sub/a.txt", ["sub-a1"])
    write("corpus/notes.md", ["not a text"])
    write("corpus/sub/table.csv", ["text,label", "a,b"])
    with pytest.warns(Notice) as caught:
        assert [r.text for r in read_texts(tmp_path / "corpus")] == ["a1", "b1", "b2", "sub-a1", "c1"]
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'corpus'}: 2 files ignored, not .txt, .jsonl, .ndjson: notes.md, sub/table.csv"]


def test_lines_without_a_text_are_counted_in_a_warning(write):
    path = write("t.jsonl", [{"text": "one"}, "", {"text": "  "}, {"text": "two"}])
    with pytest.warns(Notice, match=r"t.jsonl: 2 lines without a text skipped \(lines 2, 3\)"):
        assert [r.text for r in read_texts(path)] == ["one", "two"]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b'{"text": ""}\n'])
def test_a_file_without_any_text_is_an_error_not_an_empty_session(write, content):
    path = write("texts.jsonl", content)
    with pytest.raises(InputError) as caught, pytest.warns(Notice) if content else contextlib.nullcontext():
        list(read_texts(path))
    assert [str(p) for p in caught.value.problems] == [f"{path}: no texts to annotate: no line has a text"]
    collected: list[Problem] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Notice)
        assert list(read_texts(path, on_problem=collected.append)) == [] and len(collected) == 1  # as `check` collects


def test_an_empty_folder_or_missing_path_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for path, message in [(tmp_path / "empty", "folder has no .txt or .jsonl files"), (tmp_path / "nope.jsonl", "no such file or folder")]:
        with pytest.raises(InputError) as caught:
            list(read_texts(path))
        assert [(p.path, p.line, p.message) for p in caught.value.problems] == [(str(path), None, message)]


BAD_LINES = [
    ('{"text": "unterminated', "invalid JSON"),
    ('["a list"]', 'expected a JSON object with a "text" key, got array'),
    ('{"meta": {"id": 1}}', 'missing "text"'),
    ('{"text": 42}', '"text" must be a string, got number'),
    ('{"text": null}', '"text" must be a string, got null'),
    ('{"text": "a", "meta": "m"}', '"meta" must be an object, got string'),
    ('{"text": "abc", "spans": {"start": 0}}', '"spans" must be a list, got object'),
    ('{"text": "abc", "spans": [{"start": 0, "end": "2", "label": "X"}]}', 'span 0 needs integer "start" and "end"'),
    ('{"text": "abc", "spans": [{"start": true, "end": 2, "label": "X"}]}', 'span 0 needs integer "start" and "end"'),
    ('{"text": "abc", "spans": [{"start": 0, "end": 2}]}', 'span 0 needs a "label" string'),
    ('{"text": "abc", "spans": [{"start": 0, "end": 1, "label": "X"}, {"start": 2, "end": 9, "label": "X"}]}',
     "span 1 (2, 9) is outside the text of 3 characters"),
    ('{"text": "abc", "spans": [{"start": 2, "end": 2, "label": "X"}]}', "span 0 (2, 2) is empty"),
    # a reversed span is not "outside" a text it lies in (issue 15, 8)
    ('{"text": "' + "x" * 40 + '", "spans": [{"start": 29, "end": 14, "label": "X"}]}', "span 0 (29, 14) ends before it starts"),
    ('{"text": "abc", "spans": [{"start": -1, "end": 2, "label": "X"}]}', "span 0 (-1, 2) is outside the text of 3 characters"),
]


@pytest.mark.parametrize("line, expected", BAD_LINES)
def test_a_bad_line_raises_with_file_and_line(write, line, expected):
    path = write("t.jsonl", [{"text": "fine"}, "", line, {"text": "never reached"}])
    records = read_texts(path)
    assert next(records).text == "fine"
    with pytest.raises(InputError) as caught:
        next(records)
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == (str(path), 3)
    assert expected in problem.message


def test_non_utf8_line_is_named_in_jsonl_and_txt(write):
    jsonl = write("t.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    txt = write("t.txt", b"ok\n\xffbad\n")
    for path, byte in [(jsonl, 14), (txt, 1)]:
        with pytest.raises(InputError, match=rf"{path.name}:2: not valid UTF-8 \(byte {byte} of the line\)"):
            list(read_texts(path))


def test_on_problem_collects_every_bad_line_and_reading_goes_on(write):
    lines = [line for line, _ in BAD_LINES]
    path = write("t.jsonl", [{"text": "first"}, *lines, {"text": "last"}])
    problems = []
    assert [r.text for r in read_texts(path, on_problem=problems.append)] == ["first", "last"]
    assert [p.line for p in problems] == list(range(2, 2 + len(lines)))
    assert [expected in p.message for p, (_, expected) in zip(problems, BAD_LINES)] == [True] * len(lines)


def test_texts_are_streamed(write):
    # A reader that loaded the whole file first would fail on line 2 before yielding line 1.
    path = write("t.jsonl", [{"text": "first"}, "{not json", *({"text": f"t{i}"} for i in range(1000))])
    assert [r.text for r in itertools.islice(read_texts(path), 1)] == ["first"]


def test_same_text_same_hash_whatever_the_format_or_meta(write, tmp_path):
    write("c/a.jsonl", [{"text": "Heart failure.", "meta": {"x": 1}}, {"text": "Other."}])
    write("c/b.txt", ["Heart failure."])
    first, other, from_txt = read_texts(tmp_path / "c")
    assert first.input_hash == from_txt.input_hash != other.input_hash


def test_real_gold_files_read_whole_with_their_spans(shared_data):
    for name, count in [("ncbi-disease/dev.jsonl", 100), ("wnut17/dev.jsonl", 1009)]:
        records = list(read_texts(shared_data / name))
        assert len(records) == count
        raw = (shared_data / name).read_text(encoding="utf8").splitlines()
        assert [r.task for r in records] == [json.loads(line) for line in raw]
