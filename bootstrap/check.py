"""What ``bootstrap check`` measures: per rule, how often it fires and whom it disagrees with.

Counts are per match of the rule:

* ``votes``: matches on a *candidate*, a span some positive rule matched. Those are the votes the
  session's label matrix gets (``bootstrap stats`` counts them): a negative rule's match where no
  positive rule matched asks nothing, so it is a match here and no vote there;
* ``agreements``: another positive rule of the same label matched exactly the same span;
* ``label_conflicts``: a positive rule of a *different* label matched exactly the same span;
* ``negative_conflicts``: a rule of the same label and the other polarity matched the same span
  (a negative rule against a positive one);
* ``overlaps``: a rule matched a span that overlaps this one with other boundaries (nested or
  crossing): the rules disagree on where the entity starts or ends.

``conflicts_with`` counts, per other rule, the matches that disagreed in any of the last three ways.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterable

from .candidates import DocCandidates
from .matching import Match
from .rules import RuleSet


@dataclass
class RuleStats:
    rule_id: str
    label: str
    negative: bool
    pattern: str
    matches: int = 0
    votes: int = 0
    texts: int = 0
    agreements: int = 0
    label_conflicts: int = 0
    negative_conflicts: int = 0
    overlaps: int = 0
    conflicts_with: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["conflicts_with"] = dict(self.conflicts_with.most_common())
        return data


@dataclass
class CheckReport:
    rules: list[RuleStats]
    texts: int = 0
    texts_with_candidates: int = 0
    candidates: int = 0
    candidates_per_label: Counter = field(default_factory=Counter)

    @property
    def unmatched(self) -> list[RuleStats]:
        return [stats for stats in self.rules if stats.matches == 0]

    def to_dict(self) -> dict:
        return {
            "texts": self.texts,
            "texts_with_candidates": self.texts_with_candidates,
            "candidates": self.candidates,
            "candidates_per_label": dict(self.candidates_per_label),
            "rules": [stats.to_dict() for stats in self.rules],
            "unmatched_rules": [stats.rule_id for stats in self.unmatched],
        }


def check_rules(rules: RuleSet, results: Iterable[DocCandidates]) -> CheckReport:
    """Consume a candidate stream and count, per rule, matches, coverage, overlaps and conflicts."""
    stats = {rule.id: RuleStats(rule.id, rule.label, rule.negative, rule.describe()) for rule in rules}
    report = CheckReport(list(stats.values()))
    for result in results:
        report.texts += 1
        report.candidates += len(result.candidates)
        report.texts_with_candidates += bool(result.candidates)
        report.candidates_per_label.update(candidate.label for candidate in result.candidates)
        for rule_id in {match.rule_id for match in result.matches}:
            stats[rule_id].texts += 1
        _count_votes(result, stats)
        _count_pairs(result.matches, rules, stats)
    return report


def _count_votes(result: DocCandidates, stats: dict[str, RuleStats]) -> None:
    """A rule votes once on each candidate span it matched (a row of the label matrix is a span)."""
    spans = {(candidate.start, candidate.end) for candidate in result.candidates}
    for rule_id, start, end in {(match.rule_id, match.start, match.end) for match in result.matches}:
        if (start, end) in spans:
            stats[rule_id].votes += 1


def _count_pairs(matches: list[Match], rules: RuleSet, stats: dict[str, RuleStats]) -> None:
    # Matches are sorted by start, so each one only needs comparing with the ones that start
    # before it ends; texts have few matches, and this stays linear in practice.
    for i, match in enumerate(matches):
        stats[match.rule_id].matches += 1
        for other in matches[i + 1:]:
            if other.start >= match.end:
                break
            if other.rule_id != match.rule_id:
                _count_pair(match, other, rules, stats)
                _count_pair(other, match, rules, stats)


def _count_pair(match: Match, other: Match, rules: RuleSet, stats: dict[str, RuleStats]) -> None:
    mine, theirs = rules[match.rule_id], rules[other.rule_id]
    counts = stats[match.rule_id]
    if (match.start, match.end) != (other.start, other.end):
        counts.overlaps += 1
    elif mine.label != theirs.label:
        if not mine.negative and not theirs.negative:
            counts.label_conflicts += 1
        else:
            return  # "not X" beside "Y" on a span is no disagreement
    elif mine.negative != theirs.negative:
        counts.negative_conflicts += 1
    else:
        counts.agreements += 1
        return
    counts.conflicts_with[other.rule_id] += 1
