"""The ready-made pattern sets in ``patterns/``: each finds what its header says, exactly, and no more.

Every positive sentence names the span that must come out as a candidate with exactly those
offsets; every negative sentence must yield no candidate of the set's label. The sets are
meant to be combined, so they are also checked together: on every positive sentence, no other
set may propose a span that overlaps the expected one.
"""

from pathlib import Path

import pytest

from bootstrap.candidates import generate_candidates
from bootstrap.corpus import Record
from bootstrap.hashing import input_hash
from bootstrap.matching import RuleMatcher
from bootstrap.rules import load_rules

LIBRARY = Path(__file__).resolve().parents[1] / "patterns"

# file: (label, [(sentence, expected span text)], [negative sentences])
CASES = {
    "email": ("EMAIL", [
        ("Write to jane.doe@example.com.", "jane.doe@example.com"),
        ("Questions go to <bob_smith+news@mail.co.uk> before Friday", "bob_smith+news@mail.co.uk"),
        ("Contact: press-office@un.int, or call us.", "press-office@un.int"),
        ("(support@acme.io)", "support@acme.io"),
        ("Her address, Anna.Lee99@uni-bonn.de, bounced.", "Anna.Lee99@uni-bonn.de"),
    ], [
        "Follow @spacy_io on social media.",
        "The price is 5 @ 3 each.",
        "Send it to jane at example dot com.",
        "We met at the office@ noon.",
    ]),
    "url": ("URL", [
        ("See https://example.org/path?q=1&x=2.", "https://example.org/path?q=1&x=2"),
        ("Docs live at www.spacy.io, as always.", "www.spacy.io"),
        ("The server runs on http://localhost:8000 today", "http://localhost:8000"),
        ("Files are mirrored at ftp://ftp.gnu.org/gnu/ for everyone", "ftp://ftp.gnu.org/gnu/"),
        ("Visit github.com/explosion/spaCy for the code.", "github.com/explosion/spaCy"),
        ("More at WWW.EXAMPLE.COM!", "WWW.EXAMPLE.COM"),
        ("Read it on nytimes.com.", "nytimes.com"),
    ], [
        "Write to jane.doe@example.com for details.",
        "Open data.csv and results.txt in the editor.",
        "The https protocol is secure, e.g. in browsers.",
        "Version 3.8.1 was released.",
        "Mr. Smith arrived at 10.30 a.m. sharp.",
    ]),
    "money": ("MONEY", [
        ("It cost $5.99 at the store.", "$5.99"),
        ("Revenue reached €1,200.50 last year", "€1,200.50"),
        ("The club paid £3m for him.", "£3m"),
        ("A deal worth US$ 40 million was signed.", "US$ 40 million"),
        ("We raised 12 dollars for charity.", "12 dollars"),
        ("The fee is USD 1,000 per year.", "USD 1,000"),
        ("Grants of 3.5 billion euros were approved.", "3.5 billion euros"),
        ("They borrowed $1.2bn from banks.", "$1.2bn"),
        ("Fares start at 20 EUR per trip.", "20 EUR"),
        ("Stamps cost 50 cents each.", "50 cents"),
        ("Prices rose to ¥500 overnight.", "¥500"),
    ], [
        "He lost 20 pounds in a month.",
        "The dollar fell against the euro.",
        "Our team of 12 won 3 games.",
        "Press $ to continue.",
        "Sales grew 12% in March.",
    ]),
    "percent": ("PERCENT", [
        ("Sales grew 12% in March.", "12%"),
        ("Turnout was 3.5 % higher.", "3.5 %"),
        ("About 40 percent of voters agreed.", "40 percent"),
        ("Roughly 7 per cent said no.", "7 per cent"),
        ("Output fell -2.5% in a year", "-2.5%"),
        ("Rates rose 0.25 percentage points in June.", "0.25 percentage points"),
        ("Only ten percent replied.", "ten percent"),
    ], [
        "Percentages are hard to compare.",
        "He scored in the 90th percentile.",
        "Use the % sign for modulo.",
        "The percent sign was missing.",
    ]),
    "date": ("DATE", [
        ("The law passed on 12 March 2021 in Paris.", "12 March 2021"),
        ("It opened on March 12, 2021, to the public.", "March 12, 2021"),
        ("Data from 2021-03-12 were lost.", "2021-03-12"),
        ("Signed on 12/03/2021 by both parties.", "12/03/2021"),
        ("Filed 3/12/21.", "3/12/21"),
        ("Due by 12.03.2021.", "12.03.2021"),
        ("Payment is due on the 5th Jan. next", "5th Jan."),
        ("She left in March 2021.", "March 2021"),
        ("Sept. 12th was sunny.", "Sept. 12th"),
        ("We met on Monday to plan.", "Monday"),
        ("Music of the 1990s is back.", "1990s"),
        ("It started on 1 May 2020.", "1 May 2020"),
    ], [
        "You may go now.",
        "They march 10 miles a day.",
        "The ratio was 1/2 at best.",
        "There were 2021 participants.",
        "Call 555-123-4567 now.",
        "Sales grew 12% to $5.99.",
    ]),
    "time": ("TIME", [
        ("The train leaves at 10:30 from platform 2.", "10:30"),
        ("Doors open at 9 am sharp.", "9 am"),
        ("He called at 9:45 p.m. yesterday.", "9:45 p.m."),
        ("The alarm went off at 18:30:15.", "18:30:15"),
        ("We eat at 7pm.", "7pm"),
        ("Lunch is at 12.30PM today", "12.30PM"),
        ("Come at 5 o'clock sharp.", "5 o'clock"),
        ("They met at noon.", "noon"),
        ("The shop closes at 6 A.M. on Sundays", "6 A.M."),
    ], [
        "I am here at last.",
        "The ratio is 1.5 to 1.",
        "Call 555-123-4567 now.",
        "She was born in 1999.",
        "Room 25 is at the end of the corridor.",
    ]),
    "phone": ("PHONE", [
        ("Call +1 (555) 123-4567 today.", "+1 (555) 123-4567"),
        ("Call 555-123-4567 or write.", "555-123-4567"),
        ("Our office: 020 7946 0958.", "020 7946 0958"),
        ("From abroad dial +44 20 7946 0958.", "+44 20 7946 0958"),
        ("Reach us at (555) 123 4567 anytime", "(555) 123 4567"),
        ("The number 555.123.4567 is new", "555.123.4567"),
        ("Toll free: 1-800-555-0199.", "1-800-555-0199"),
        ("Berlin office +49 (0)30 1234567, weekdays.", "+49 (0)30 1234567"),
        ("Paris: +33 1 23 45 67 89.", "+33 1 23 45 67 89"),
    ], [
        "ISBN 978-3-16-148410-0 is on the back.",
        "The population was 331,449,281 in 2020.",
        "The meeting is on 2021-03-12 at 10:30.",
        "Card number 4111 1111 1111 1111 was declined.",
        "Scores were 12-10 and 3-1.",
        "Add #phone : +43 7 .. 694 0 now",  # too few digits after the +
    ]),
}


def _candidates(nlp, matcher, text: str) -> list[tuple[int, int, str]]:
    (result,) = generate_candidates(nlp, matcher, [Record(text, input_hash(text), "test", {"text": text})])
    return [(c.start, c.end, c.label) for c in result.candidates]


def _span(text: str, expected: str) -> tuple[int, int]:
    assert text.count(expected) == 1, f"{expected!r} must occur once in {text!r}"
    start = text.index(expected)
    return start, start + len(expected)


@pytest.fixture(scope="module")
def matchers(nlp):
    return {name: RuleMatcher(nlp, load_rules([LIBRARY / f"{name}.jsonl"], nlp.vocab)) for name in CASES}


@pytest.fixture(scope="module")
def combined(nlp):
    return RuleMatcher(nlp, load_rules(sorted(LIBRARY.glob("*.jsonl")), nlp.vocab))


def test_library_has_every_set_and_nothing_untested():
    assert sorted(path.stem for path in LIBRARY.glob("*.jsonl")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_set_loads_with_one_label_and_a_header(nlp, name):
    path = LIBRARY / f"{name}.jsonl"
    rules = load_rules([path], nlp.vocab)
    assert rules.labels == [CASES[name][0]]
    assert path.read_text(encoding="utf8").startswith("# ")
    assert not any(rule.negative for rule in rules)


@pytest.mark.parametrize("name", sorted(CASES))
def test_positive_sentences_give_the_exact_span(nlp, matchers, name):
    label, positives, _ = CASES[name]
    for text, expected in positives:
        start, end = _span(text, expected)
        found = _candidates(nlp, matchers[name], text)
        assert (start, end, label) in found, f"{text!r}: expected {expected!r}, got {[text[s:e] for s, e, _ in found]}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_negative_sentences_give_no_candidate(nlp, matchers, name):
    label, _, negatives = CASES[name]
    for text in negatives:
        found = [text[s:e] for s, e, found_label in _candidates(nlp, matchers[name], text) if found_label == label]
        assert not found, f"{text!r}: unexpected {label} {found}"


def test_sets_do_not_clash_when_combined(nlp, combined):
    """Loaded together (ids are unique across files), no set claims another set's example."""
    for label, positives, _ in CASES.values():
        for text, expected in positives:
            start, end = _span(text, expected)
            found = _candidates(nlp, combined, text)
            assert (start, end, label) in found
            clashes = [(text[s:e], other) for s, e, other in found if other != label and s < end and start < e]
            assert not clashes, f"{text!r}: {expected!r} ({label}) overlaps {clashes}"
