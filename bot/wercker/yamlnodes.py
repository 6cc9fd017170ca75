"""Reading YAML as nodes for ``nodes``: the loader (compose only, no Python objects), a
located problem for a YAML error, the alias-expansion guard, and the text of a scalar as
written."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.wercker import schema
from bot.wercker.model import Loc, Problem

NULL = "tag:yaml.org,2002:null"
_N = TypeVar("_N", bound=Node)
BOOL = "tag:yaml.org,2002:bool"


def file_error(filename: str, what: str) -> Problem:
    return Problem(Loc(filename, 1, 1), "error", f"{filename} {what}")


class Loader(yaml.SafeLoader):
    """SafeLoader; only ``compose`` is used, so no Python objects are ever constructed.
    ``anchored`` holds the ids of the nodes that carry an anchor (``&name``): the node graph
    itself forgets anchors, and ``nodes`` needs them to tell a holder of shared YAML from a
    pipeline."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.anchored: set[int] = set()

    def compose_scalar_node(self, anchor: Any) -> ScalarNode:
        return self._mark(super().compose_scalar_node(anchor), anchor)

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        return self._mark(super().compose_sequence_node(anchor), anchor)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        return self._mark(super().compose_mapping_node(anchor), anchor)

    def _mark(self, node: _N, anchor: object) -> _N:
        if anchor is not None:
            self.anchored.add(id(node))
        return node


def compose(text: str) -> tuple[Node | None, set[int]]:
    """``yaml.compose`` with the loader above: the root node (``None`` for an empty document)
    and the ids of its anchored nodes. Raises ``yaml.YAMLError`` or ``RecursionError``."""
    loader = Loader(text)
    try:
        return loader.get_single_node(), loader.anchored
    finally:
        loader.dispose()


def yaml_error(err: yaml.YAMLError, text: str, filename: str) -> Problem:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    if isinstance(err, yaml.reader.ReaderError) and isinstance(err.position, int):
        # A bad character: the reader gives an offset, not a mark.
        line = text.count("\n", 0, err.position) + 1
        col = err.position - text.rfind("\n", 0, err.position)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    context_mark = getattr(err, "context_mark", None)
    message = f"invalid YAML: {problem}"
    if context and context_mark is not None and context_mark is not mark:
        message += f" ({context} started at line {context_mark.line + 1})"
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    hint = None
    if "\t" in problem or "\t" in source[: max(col, 1)]:
        hint = "indent with spaces; YAML does not allow tabs for indentation"
    elif re.match(r"\s*-[^\s\-]", source):
        hint = "put a space after '-' to start a list item (e.g. '- script:')"
    elif "mapping values are not allowed" in problem:
        hint = _mapping_values_hint(lines, line, col)
    elif "expected <block end>" in problem:
        hint = "check this line's indentation against the lines above it"
    return Problem(Loc(filename, line, col), "error", message, hint)


_PLAIN_ITEM = re.compile(r"(\s*)-\s+[^:#\s][^:#]*(#.*)?")  # '- npm-install', no colon
_KEY_VALUE = re.compile(r"(\s*)(?:-\s+)?([^\s:#][^:#]*):\s+([^\s|>#&*].*)")  # 'key: text'


def _mapping_values_hint(lines: list[str], line: int, col: int) -> str:
    """What is wrong on ``line`` when YAML finds a ``:`` at ``col`` where no key may start:
    a value holding ``': '``, a ``key: value`` under a plain list item, or a line indented
    under a ``key: value``. Names keys only, never values (they may be credentials)."""
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    before = source[: max(col - 1, 0)]
    head = _KEY_VALUE.fullmatch(before)
    if head is not None:
        return (
            f"the value after '{head.group(2).strip()}:' contains ': ', which YAML reads as "
            "another key; quote the whole value (or use a block scalar '|'), or put a nested "
            "key on its own line, indented"
        )
    indent = len(source) - len(source.lstrip())
    prev = next(
        (
            text
            for text in reversed(lines[: line - 1])
            if text.strip() and not text.lstrip().startswith("#")
        ),
        "",
    )
    prev_indent = len(prev) - len(prev.lstrip())
    if _PLAIN_ITEM.fullmatch(prev) and indent > prev_indent:
        item = prev.split("#", 1)[0].strip()[1:].strip()[:60]
        key = before.strip().lstrip("-").strip()[:60]
        return (
            f"'- {item}' above is a plain list item, so '{key}:' cannot be indented under "
            f"it; to give a step options write '- {item}:' and indent its options under it"
        )
    above = _KEY_VALUE.fullmatch(prev)
    if above is not None and indent > prev_indent:
        key = above.group(2).strip()
        return (
            f"this line is indented deeper than '{key}:' above, which already has a value on "
            f"its line; line this key up with '{key}:', or write '{key}:' alone to nest it"
        )
    return "a new 'key:' cannot start here: check this line's indentation against the lines above"


MAX_EXPANDED_VALUES = 1_000_000
MAX_EXPANDED_CHARS = 4_000_000
"""With aliases expanded, a file may hold at most this many values and characters of text:
a few aliases (``<<: *defaults``) are far below it, and a 1 MB file without aliases cannot
reach it, but ``[&t '…', *t, *t, …]`` ("billion laughs") would make gigabytes."""


def alias_blowup(root: Node, filename: str) -> Problem | None:
    """A problem when aliases make the file too big to read once expanded, or an alias sits
    inside the node it names (``&a [*a]``, which no reading could finish); else ``None``.
    Each distinct node is visited once (sizes are memoised), without recursion."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters) expanded
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done:
            open_nodes.discard(key)
            values, chars = 1, 0
            for child in children:
                child_values, child_chars = sizes[id(child)]
                values, chars = values + child_values, chars + child_chars
            sizes[key] = (values, chars)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            return Problem(
                Loc(filename, node.start_mark.line + 1, node.start_mark.column + 1),
                "error",
                "an alias ('*name') is used inside the node its anchor ('&name') names, "
                "so the value never ends",
                "anchor a node that does not contain the alias",
            )
        if isinstance(node, ScalarNode):
            sizes[key] = (1, len(str(node.value)))
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    values, chars = sizes[id(root)]
    if values > MAX_EXPANDED_VALUES or chars > MAX_EXPANDED_CHARS:
        return Problem(
            Loc(filename, 1, 1),
            "error",
            f"{filename} is too big once its aliases ('*name') are expanded (over "
            f"{MAX_EXPANDED_VALUES:,} values or {MAX_EXPANDED_CHARS:,} characters)",
            "repeat less through aliases: write the shared parts once",
        )
    return None


def scalar_text(node: ScalarNode, option: str) -> str:
    if node.tag == NULL:
        return ""
    if node.tag == BOOL:
        lowered = node.value.lower()
        if lowered in ("true", "false"):
            return lowered  # never Python's "True": disable-sync compares with "true"
        if option in schema.BOOL_OPTIONS:
            return "true" if lowered in ("yes", "on", "y") else "false"
    return str(node.value)


def raw(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else ""


def kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == NULL:
        return "empty"
    return "a plain value"  # never echo the value: it may be a credential
