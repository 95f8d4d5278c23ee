"""Rival candidates: spans of one text that overlap with other boundaries, of which one at most is right.

An entity layer is flat: spaCy's ``doc.ents`` cannot overlap, and neither can the gold of any
corpus it trains on. So when a person accepts "Duchenne muscular dystrophy", every candidate that
crosses it or nests in it ("muscular dystrophy", "dystrophy (DMD)") is settled as well: it is not
an entity there. A reject settles nothing beyond its own span ("breast cancer" is not an entity;
"cancer" inside it may still be). :class:`Rivals` holds who overlaps whom so the aggregate can
apply that (:meth:`~bootstrap.aggregate.Aggregate.observe`) and the ranking can ask the question
whose answer settles the most (:meth:`~bootstrap.ranking.Ranker.reach`). The training set applies
the same rule (``weak_labels``: the rivals of an accepted span become incorrect spans).

Candidates with the same boundaries are not rivals (a text that occurs twice in a corpus has its
candidates twice).
"""

from __future__ import annotations

import numpy as np

from .labelmatrix import CandidateTable


class Rivals:
    """The rival pairs of a table's rows, both ways round, as a sparse rows × rows adjacency."""

    def __init__(self, table: CandidateTable):
        self.n_rows = table.n_rows
        self.first, self.second = rival_pairs(table)
        order = np.argsort(self.first, kind="stable")
        self._neighbours = self.second[order]
        self._starts = np.searchsorted(self.first[order], np.arange(self.n_rows + 1))

    def __len__(self) -> int:
        """How many (row, rival) pairs, each pair counted both ways."""
        return len(self.first)

    def of(self, row: int) -> np.ndarray:
        """The rows that overlap ``row`` with other boundaries."""
        return self._neighbours[self._starts[row]:self._starts[row + 1]]

    def sum_over(self, per_row: np.ndarray) -> np.ndarray:
        """Per row, the sum of ``per_row`` over its rivals (one bincount over the pairs)."""
        return np.bincount(self.first, weights=per_row[self.second], minlength=self.n_rows)


def rival_pairs(table: CandidateTable) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (a, b) of rows of one text whose spans overlap with other boundaries.

    Rows are sorted by text, then start; a row overlaps the next ``d`` rows of its text while
    their starts come before its end, so comparing each row with the one ``d`` places on, for
    ``d = 1, 2, ...`` until no row overlaps the one ``d`` places on, finds every pair in a few
    vectorised passes (as many as the most candidates a stretch of text holds).
    """
    order = np.lexsort((table.end, table.start, table.input_hash))
    text, start, end = table.input_hash[order], table.start[order], table.end[order]
    firsts, seconds = [], []
    for d in range(1, len(order)):
        overlapping = (text[d:] == text[:-d]) & (start[d:] < end[:-d])
        if not overlapping.any():
            break
        other = overlapping & ((start[d:] != start[:-d]) | (end[d:] != end[:-d]))
        at = np.flatnonzero(other)
        firsts.append(order[at])
        seconds.append(order[at + d])
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a, b = np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)
    return np.concatenate([a, b]), np.concatenate([b, a])
