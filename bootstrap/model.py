"""The trained model's own view of spans: a probability per (span, label), for ranking questions.

A greedy ``ner`` only says which entities it would output. Running it as a beam search instead
(``ner.beam_parse``) keeps the ``beam_width`` best analyses of each text with their
probabilities; ``ner.scored_ents`` sums, per span and label, the probabilities of the analyses
that contain it. That is the model's confidence in "this span is a LABEL", for spans it would
not output as well, and it works on a greedy ``ner`` as on a ``beam_ner``.
"""

from __future__ import annotations

from typing import Iterable

from spacy.language import Language
from spacy.tokens import Doc

SpanProbabilities = dict[tuple[int, int, str], float]  # (start_char, end_char, label) -> probability


def span_probabilities(
    nlp: Language,
    docs: Iterable[Doc | str],
    beam_width: int = 16,
    beam_density: float = 0.0001,
    ner: str = "ner",
) -> list[SpanProbabilities]:
    """For each doc, the probability of every span and label the beam considered.

    Texts are tokenized, and the components before ``ner`` (e.g. a shared ``tok2vec``) run
    first, as ``nlp.pipe`` would. Probabilities are clipped to [0, 1]: the beam's sums can
    overshoot 1 by a rounding error.
    """
    docs = [nlp.make_doc(doc) if isinstance(doc, str) else doc for doc in docs]
    if not docs:
        return []
    component = nlp.get_pipe(ner)
    for name, proc in nlp.pipeline:
        if name == ner:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
    beams = component.beam_parse(docs, beam_width=beam_width, beam_density=beam_density)
    results = []
    for doc, scores in zip(docs, component.scored_ents(beams)):
        results.append({
            (doc[start].idx, doc[end - 1].idx + len(doc[end - 1]), label): min(1.0, max(0.0, float(prob)))
            for (start, end, label), prob in scores.items()
        })
    return results
