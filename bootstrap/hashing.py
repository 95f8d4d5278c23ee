"""Stable hashes for texts and questions, the keys every stored decision hangs on.

Prodigy's ``_input_hash`` and ``_task_hash`` are 32-bit murmurhashes; at 100k texts 32 bits
already give about one collision, which would merge two texts' decisions. These are 64-bit
BLAKE2b values instead: the same input gives the same hash on every run and machine, and
the value is still a plain JSON integer where Prodigy's tools expect one.
"""

from __future__ import annotations

import hashlib


def _hash64(data: str) -> int:
    digest = hashlib.blake2b(data.encode("utf8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def input_hash(text: str) -> int:
    """Hash of a text alone: the same text is the same example whatever its meta."""
    return _hash64(text)


def task_hash(input_hash: int, start: int, end: int, label: str) -> int:
    """Hash of one binary question: this span of this text, with this label."""
    return task_hashes([input_hash], [start], [end], [label], [0])[0]


def task_hashes(input_hashes: list[int], starts: list[int], ends: list[int], labels: list[str],
                label_indexes: list[int]) -> list[int]:
    """:func:`task_hash` of many questions at once (``labels[label_indexes[i]]`` is question i's label)."""
    return [_hash64(f"{h}|{s}|{e}|{labels[c]}") for h, s, e, c in zip(input_hashes, starts, ends, label_indexes)]
