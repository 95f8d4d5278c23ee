"""Every setting of a session in one place, each default written once (spaCy's way: one config).

The command line reads its option defaults from here (``bootstrap/cli/``), so a default changed
here changes the page, ``simulate`` and the CLI together. This module imports nothing heavy:
``bootstrap --help`` must not load spaCy, and Typer evaluates defaults when a command is defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .weak_labels import WeakLabelConfig

DEFAULT_DB = "bootstrap.db"  # a SQLite file in the working folder; --db takes a path or a URL
LANG = "en"  # spacy.blank(LANG) tokenizes the texts, the rules and the training data
PHRASE_ATTR = "ORTH"  # the token attribute phrase patterns match on
SEED = 0  # exploration draws, the LabelModel, samples and training
# Passes over the training data at most, for every training: the handoff, ``bootstrap train``
# (with ``--rules`` or without), simulate. ``weak_labels.epochs_for`` raises it for a small
# whole-corpus set; patience (evaluations without improvement) ends most trainings before it.
MAX_EPOCHS = 10
# A session starts on the corpus's first texts and reads the rest in the background
# (``bootstrap.reading``): the first question in seconds whatever the corpus size.
FIRST_TEXTS = 1_000

HandoffMode = Literal["never", "auto", "now"]
MODES = ("never", "auto", "now")
RETRY_AFTER = 10  # decisions between a failed training and the next try


@dataclass(frozen=True)
class HandoffPolicy:
    """When a model trained from the decisions is trained and may take over (``bootstrap.handoff``)."""

    mode: HandoffMode = "auto"
    every: int = 200  # new decisions between two trainings
    min_accepts: int = 20  # accepts per label before a model trained from decisions
    max_epochs: int = MAX_EPOCHS
    patience: int = 2  # evaluations (about one an epoch) without improvement before training stops
    models_dir: str = "bootstrap-models"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"handoff must be one of {', '.join(MODES)}, got {self.mode!r}")

    def due(self, decisions: int, last_trained_at: int | None, accepts: dict[str, int], last_failed: bool = False) -> bool:
        """Whether to start training now, given the decisions so far and the accepts per label.

        After a failed training (too few texts to hold any out, say) the next try waits for
        ``RETRY_AFTER`` more decisions, in every mode.
        """
        if self.mode == "never" or not accepts:
            return False
        needed = 1 if self.mode == "now" else self.min_accepts
        if min(accepts.values()) < needed:
            return False
        if last_trained_at is None:
            return True
        if last_failed:
            return decisions - last_trained_at >= RETRY_AFTER
        return self.mode == "auto" and decisions - last_trained_at >= self.every


@dataclass(frozen=True)
class PipelineRules:
    """What a training needs to put the rules, corrected by the decisions, in a pipeline
    (``bootstrap.pipeline``): the rules' files and how their phrases match."""

    pattern_files: tuple[str, ...]
    phrase_attr: str = PHRASE_ATTR


def _weak_label_defaults() -> WeakLabelConfig:
    from .weak_labels import WeakLabelConfig  # spaCy comes with it: only when a session is configured

    return WeakLabelConfig()


@dataclass
class SessionConfig:
    """Every knob of the loop in one place (the CLI's options map onto it)."""

    exploration: float = 0.1
    model_share: float = 0.1  # of the ranked questions, once a model is in the loop: its proposals and disputes
    label_floor: float = 0.5
    seed: int = SEED
    refit_every: int = 100
    lease_seconds: float = 300.0
    background_refit: bool = True
    handoff: HandoffPolicy = field(default_factory=HandoffPolicy)
    weak_labels: WeakLabelConfig = field(default_factory=_weak_label_defaults)
    lang: str = LANG
    # Keyword arguments of bootstrap.aggregate.Aggregate (prior_strength, fallback_accuracy, epochs,
    # method); its own defaults hold for any not given.
    aggregate: dict[str, Any] = field(default_factory=dict)
