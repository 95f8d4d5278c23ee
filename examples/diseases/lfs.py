"""Labeling functions for the DISEASE example: context the token patterns cannot see.

Run with ``bootstrap examples/diseases/patterns.jsonl examples/diseases/texts.jsonl --lfs examples/diseases/lfs.py``.
"""

from bootstrap.lfs import labeling_function, span_proposer

PATIENT_WORDS = {"patients", "patient", "families", "family", "cases", "carriers", "kindreds", "children"}
GENE_WORDS = {"gene", "genes", "protein", "proteins", "locus", "mrna", "promoter", "antigen", "allele", "alleles"}


@labeling_function(label="DISEASE")
def names_the_patients(span):
    """'<X> patients' / 'families with <X>': a disease is what patients have."""
    doc = span.doc
    after = doc[span.end].lower_ if span.end < len(doc) else ""
    before = doc[span.start - 1].lower_ if span.start > 0 else ""
    if after in PATIENT_WORDS or (before == "with" and span.start > 1 and doc[span.start - 2].lower_ in PATIENT_WORDS):
        return True
    return None


@labeling_function(label="DISEASE")
def names_a_gene(span):
    """'<X> gene', '<X> protein': named after a disease, but not one."""
    doc = span.doc
    if span.end < len(doc) and doc[span.end].lower_ in GENE_WORDS:
        return False
    return None


@span_proposer(label="DISEASE")
def long_form_of_abbreviation(doc):
    """'Duchenne muscular dystrophy (DMD)': the words before an abbreviation whose initials spell it.

    The rules find the abbreviation and parts of the long form; this proposes the whole of it,
    which no token pattern covers. Gene long forms come too ("tumor necrosis factor (TNF)"):
    the gene rules and the decisions sort those out.
    """
    for token in doc[:-2]:
        abbreviation = doc[token.i + 1].text
        if token.text != "(" or doc[token.i + 2].text != ")" or not (abbreviation.isupper() and 2 <= len(abbreviation) <= 6):
            continue
        start = token.i - len(abbreviation)
        if start >= 0 and "".join(word.text[0] for word in doc[start:token.i]).upper() == abbreviation:
            yield doc[start:token.i]
