"""Labeling functions for the PRODUCT example: what the token patterns cannot see.

Run with ``bootstrap examples/products/patterns.jsonl examples/products/texts.jsonl --lfs examples/products/lfs.py``.

The rules only know the brands and product lines someone thought of; people write "my Nissan
Leaf" and "the Ninja Foodi" about everything else. The proposer reads that habit, the functions
vote on what is owned or bought (a product) and on what makes announcements (a company).
"""

from bootstrap.lfs import labeling_function, span_proposer

OWNERS = {"my", "our"}
DETERMINERS = {"my", "the", "a", "an", "our", "his", "her", "their", "your", "new", "old"}
BUYING_VERBS = {"bought", "buy", "ordered", "returned", "selling", "sold", "upgraded", "tried", "tested", "replaced", "recommend"}
COMPANY_VERBS = {"said", "says", "announced", "reported", "confirmed", "recalled", "delivered", "cut", "quietly", "will", "did", "has", "is"}
OWNED_AFTER = {"battery", "screen", "camera", "case", "charger", "keyboard", "remote", "controller", "bundle", "owners", "users"}
LONGEST_NAME = 5


def _name_like(token) -> bool:
    """A token that can be part of a product name: capitalised, camel-cased ("iPhone") or with a digit."""
    text = token.text
    if token.is_punct or token.is_space or text == "I" or (token.is_stop and not text[:1].isupper()):
        return False
    return text[:1].isupper() or any(c.isdigit() for c in text) or (text[:1].islower() and any(c.isupper() for c in text[1:]))


@span_proposer(label="PRODUCT")
def determiner_then_name(doc):
    """'my Nissan Leaf', 'the Ninja Foodi', 'a Thermomix TM6': a run of name-like tokens after a determiner.

    Deliberately generous: "the Switch" and "the Hyundai Kona Electric" are products, "the Tesla",
    "the US" and "the Sony event" ("Sony") are not. The rule against brands alone, the company
    function below and the decisions sort them out.
    """
    for token in doc[:-1]:
        if token.lower_ not in DETERMINERS:
            continue
        end = token.i + 1
        while end < len(doc) and end - token.i <= LONGEST_NAME and _name_like(doc[end]):
            end += 1
        run = doc[token.i + 1 : end]
        if run:
            yield run


@labeling_function(label="PRODUCT")
def owned_or_bought(span):
    """'bought the X', 'my (old) X', 'the X battery': people own, buy and break products, not companies."""
    doc = span.doc
    before = doc[span.start - 1].lower_ if span.start > 0 else ""
    two_before = doc[span.start - 2].lower_ if span.start > 1 else ""
    after = doc[span.end].lower_ if span.end < len(doc) else ""
    owned = before in OWNERS or (before in {"new", "old"} and two_before in OWNERS)
    if owned or before in BUYING_VERBS or two_before in BUYING_VERBS or after in OWNED_AFTER:
        return True
    return None


@labeling_function(label="PRODUCT")
def acts_like_a_company(span):
    """'Samsung Electronics reported', 'Sony quietly discontinued': makers announce, products do not."""
    doc = span.doc
    after = doc[span.end].lower_ if span.end < len(doc) else ""
    if after in COMPANY_VERBS and not any(c.isdigit() for c in span.text) and len(span) <= 2:
        return False
    return None
