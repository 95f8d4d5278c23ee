"""How often each candidate string occurs in the texts a training reads: the reach of its first accept.

An accepted string is an entity wherever it occurs, also where no rule proposed it
(:mod:`bootstrap.weak_labels` matches accepted strings again over every text): "Myotonic
dystrophy", proposed whole only where a function saw its abbreviation after it, occurs 57 times
in NCBI-disease's pool, and everywhere else the rules propose only the "dystrophy" inside it.
Counting a question's reach by its candidates alone misses those occurrences, so the ranking
(:mod:`bootstrap.ranking`) adds them, weighted by the chance of a yes. On NCBI-disease without a
model (12 seeds, paired) that scored the corrected rules 0.016 ± 0.007 higher at 100 decisions
and 0.002 ± 0.007 at 200: the strings that reach far are asked sooner, and by 200 decisions the
same strings are decided either way.

The texts counted are the training set's sample (``weak_labels.sample_texts``: every text of a
small corpus, a fixed sample of a large one), so the count is what an accept moves in the
training set, and its cost is bounded whatever the corpus size. Only the tokenizer runs; the
sample's Docs are kept, so strings a model adds later are counted without reading again.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np
from spacy.language import Language
from spacy.matcher import PhraseMatcher

from .labelmatrix import CandidateTable, surface_key


class StringCounts:
    """Occurrences of strings (by ``surface_key``) in a fixed sample of texts, counted on demand."""

    def __init__(self, nlp: Language, texts: Iterable[tuple[int, str]]):
        self.nlp = nlp
        sample = list(texts)
        self.input_hashes = np.array([key for key, _ in sample], dtype=np.int64)
        self._docs = list(nlp.tokenizer.pipe(text for _, text in sample))
        self._counts: dict[str, int] = {}

    def counts(self, strings: Iterable[str]) -> dict[str, int]:
        """``surface_key -> occurrences`` in the sample for every one of ``strings`` (surface keys),
        matching case-blind and then keeping the occurrences whose own key is the string's ("WAS"
        is not "was"). Strings seen before are not matched again."""
        strings = set(strings)
        new = sorted(strings - self._counts.keys())
        if new:
            matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
            matcher.add("string", list(self.nlp.tokenizer.pipe(sorted({s.lower() for s in new}))))
            wanted = set(new)
            found: Counter = Counter()
            for doc in self._docs:
                for _, start, end in matcher(doc):
                    key = surface_key(doc[start:end].text)
                    if key in wanted:
                        found[key] += 1
            self._counts.update({s: found[s] for s in new})
        return {s: self._counts[s] for s in strings}

    def beyond_candidates(self, table: CandidateTable, group: np.ndarray, keys: Sequence[tuple[str, int, bool]]) -> np.ndarray:
        """Per string group (``Aggregate.question_groups``: ``keys`` are (surface, class,
        overlapping)), its string's occurrences in the sample that are no question of the group:
        the occurrences an accept reaches besides its own candidates. A string in both settings
        counts its occurrences in each group, an overestimate where it stands both ways."""
        counts = self.counts(surface for surface, _, _ in keys)
        sampled = np.isin(table.input_hash[table.question_row], self.input_hashes)
        own = np.bincount(group, weights=sampled, minlength=len(keys))
        total = np.array([counts[surface] for surface, _, _ in keys], dtype=np.float64)
        return np.maximum(total - own, 0.0)
