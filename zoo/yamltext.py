"""YAML as zoo reads it: the safe loader, with a key written twice refused.

YAML forbids a mapping key written twice, but PyYAML keeps the last value silently, so a
card whose ``config`` appears twice would quietly lose the first. Every YAML document zoo
reads (card files, the metadata of a Hugging Face model card) goes through :func:`load`.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

try:  # libyaml's parser when PyYAML has it (7x faster on the cards: `zoo list` reads them)
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # a PyYAML built without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]

MERGE_TAG = "tag:yaml.org,2002:merge"


class _NoDuplicateKeys(SafeLoader):
    """PyYAML's safe loader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *anchor` may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = lines.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the safe loader refuses it in its words
                continue
            if first != key_node.start_mark.line + 1:
                raise ConstructorError(
                    problem=f"the key {key!r} is written twice (lines {first} and "
                    f"{key_node.start_mark.line + 1}); YAML forbids it, and the first value "
                    "would be lost silently"
                )
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """One YAML document, safely; a duplicate key raises :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=_NoDuplicateKeys)  # a SafeLoader: no arbitrary objects
