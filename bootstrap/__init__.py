"""bootstrap: from a file of rules to a trained spaCy NER model for a new entity type."""

__version__ = "0.1.0"
