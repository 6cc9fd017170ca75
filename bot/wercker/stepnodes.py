"""The node reading that pipelines share (``nodes`` reads the file and its pipelines):
problems located at their node, mapping entries, option text, steps and their options, and
boxes. Problems are collected, never raised."""

from __future__ import annotations

import re
import shlex

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.wercker import schema
from bot.wercker.checks import did_you_mean
from bot.wercker.model import BoxSpec, Loc, Problem, StepSpec
from bot.wercker.yamlnodes import NULL, kind, raw, scalar_text

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # POSIX portable names, ASCII only


class StepReader:
    """Reads steps, boxes and option values from nodes; collects problems (``problems``),
    each tagged with the pipeline being read (``pipeline``)."""

    def __init__(self, filename: str) -> None:
        self.file = filename
        self.problems: list[Problem] = []
        self.pipeline: str | None = None  # tags problems with the pipeline they lie in
        self.seen_pairs: dict[int, list[tuple[ScalarNode, Node]]] = {}
        self.anchored: set[int] = set()  # ids of nodes that carry an anchor ('&name')

    # -- problems ---------------------------------------------------------------------------

    def loc(self, node: Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loc(node), "error", message, hint, self.pipeline))

    def warn(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loc(node), "warning", message, hint, self.pipeline))

    def pairs(self, node: MappingNode) -> list[tuple[ScalarNode, Node]]:
        """Mapping entries with scalar keys; duplicate keys warn (PyYAML keeps the last).
        Keys merged in with ``<<`` are overridden silently, as YAML intends. A node reached
        again through an alias is answered from the cache, so its problems are told once."""
        cached = self.seen_pairs.get(id(node))
        if cached is not None:
            return cached
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            yaml.constructor.SafeConstructor().flatten_mapping(node)  # apply '<<' merges
        except yaml.YAMLError as err:
            self.error(node, f"invalid merge ('<<'): {getattr(err, 'problem', err)}")
        except RecursionError:  # '&a {<<: *a}' merges itself
            self.error(node, "invalid merge ('<<'): a mapping merges itself")
            node.value = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]
        seen: dict[str, ScalarNode] = {}
        out: list[tuple[ScalarNode, Node]] = []
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"a key must be text, not {kind(key)}")
                continue
            name = key.value
            if name in seen:
                first = seen[name]
                if id(first) in own:
                    self.warn(
                        key,
                        f"duplicate key '{name}' (first at line "
                        f"{first.start_mark.line + 1}); this one wins",
                    )
                out = [(k, v) for k, v in out if k.value != name]
            seen[name] = key
            out.append((key, value))
        self.seen_pairs[id(node)] = out
        return out

    # -- steps --------------------------------------------------------------------------------

    def steps(self, node: Node) -> list[StepSpec]:
        if node.tag == NULL:
            return []
        if not isinstance(node, SequenceNode):
            self.error(
                node, f"steps must be a list (each item starting with '- '), not {kind(node)}"
            )
            return []
        out = []
        for item in node.value:
            step = self.step(item)
            if step is not None:
                out.append(step)
        return out

    def step(self, node: Node) -> StepSpec | None:
        if isinstance(node, ScalarNode):
            if node.tag == NULL or not node.value.strip():
                self.error(node, "empty step")
                return None
            step_id = node.value.strip()
            return self.kept(StepSpec(step_id, self.loc(node), step_id), node)
        if isinstance(node, SequenceNode):
            self.error(node, "a step must be a step id or a mapping, not a list")
            return None
        assert isinstance(node, MappingNode)
        entries = self.pairs(node)
        if not entries:
            self.error(node, "empty step")
            return None
        (id_node, value), siblings = entries[0], entries[1:]
        step_id = id_node.value.strip()
        step = StepSpec(step_id, self.loc(id_node), step_id)
        inline_name: str | None = None
        if isinstance(value, MappingNode):
            option_pairs = self.pairs(value) + siblings
        elif isinstance(value, SequenceNode):
            self.error(value, f"the options of step '{step_id}' must be a mapping, not a list")
            return None
        elif value.tag == NULL:
            if not siblings and step_id == "script":
                self.error(id_node, "step script is empty", "give it 'code:' (indented under it)")
                return None
            option_pairs = siblings
        else:
            inline_name = raw(value)
            option_pairs = siblings
        self.options(step, option_pairs)
        if inline_name is not None:
            if step.name == step_id:
                step.name = inline_name
            self.warn(
                value,
                f"the text after '{step_id}:' is read as the step's name",
                f"write it as 'name: {inline_name}' under the step",
            )
        return self.kept(step, id_node)

    def kept(self, step: StepSpec, node: Node) -> StepSpec | None:
        """``step``, or ``None`` (with a warning) for a step Wercker ran as nothing outside
        ``wercker dev``: a dev-only step (``internal/watch``, ``internal/shell``: the CLI
        skipped them without ``--enable-dev-steps``, spec §1.6), or a ``script`` step whose
        ``code`` is missing or blank (a no-op; only a null ``- script:`` is an error). Dropped
        here, they never reach lint, the plan or the executor."""
        if step.id in schema.DEV_STEPS:
            self.warn(
                node,
                f"{step.id} is a Wercker dev-mode step; it is skipped",
                "the Wercker CLI ran it only under 'wercker dev'; a build never runs it",
            )
            return None
        if step.id == "script" and not step.option("code").strip():
            typo = next(
                (hint for key in step.options if (hint := did_you_mean(key, {"code"}))), None
            )
            self.warn(
                node,
                f"script step '{step.name}' has no code; it does nothing and is skipped",
                typo or "give it a 'code:' option with the commands to run, or remove it",
            )
            return None
        return step

    def options(self, step: StepSpec, pairs: list[tuple[ScalarNode, Node]]) -> None:
        aliases = schema.ALIASES.get(step.id, {})
        written = {k.value for k, _ in pairs}
        for key_node, value in pairs:
            key = key_node.value
            if key == "checkpoint":
                self.warn(key_node, "'checkpoint' is for Wercker's dev mode; it is ignored")
                continue
            if key in aliases:
                target = aliases[key]
                if target in written:
                    self.warn(key_node, f"'{key}' is ignored because '{target}' is also set")
                    continue
                self.warn(
                    key_node,
                    f"'{key}' is read as '{target}' (Wercker ignored '{key}')",
                    f"rename it to '{target}'",
                )
                key = target
            if isinstance(value, ScalarNode) and value.tag == NULL:
                self.warn(key_node, f"option '{key}' has no value; read as empty")
            text = self.scalar(value, key)
            if key == "name":
                step.name = text or step.id
                if step.id not in schema.NAME_IS_OPTION:
                    continue
            elif key == "cwd":
                step.cwd = text or None
                continue
            step.options[key] = text
            step.option_locs[key] = self.loc(key_node)

    # -- boxes ----------------------------------------------------------------------------------

    def services(self, node: Node) -> list[BoxSpec]:
        if node.tag == NULL:
            return []
        items = node.value if isinstance(node, SequenceNode) else [node]
        if not isinstance(node, SequenceNode):
            self.warn(node, "'services' should be a list; read as a list of one")
        return [box for item in items if (box := self.box(item)) is not None]

    def box(self, node: Node) -> BoxSpec | None:
        if isinstance(node, ScalarNode):
            text = self.scalar(node, "box")
            if not text:
                self.error(node, "box has no image")
                return None
            return BoxSpec(text, self.loc(node))
        if not isinstance(node, MappingNode):
            self.error(node, f"a box must be an image name or a mapping, not {kind(node)}")
            return None
        box = BoxSpec("", self.loc(node))
        aliases = schema.ALIASES["box"]
        for key_node, value in self.pairs(node):
            key = key_node.value
            if key == "env":
                box.env = self.box_env(value)
                continue
            if key in aliases:
                self.warn(key_node, f"'{key}' is read as '{aliases[key]}'")
                key = aliases[key]
            text = self.scalar(value, key)
            if key == "id":
                box.id = text
                box.id_loc = self.loc(value)
            else:
                box.options[key] = text
                box.option_locs[key] = self.loc(key_node)
        if not box.id:
            self.error(node, "box has no 'id' (the image to use)")
            return None
        return box

    def box_env(self, node: Node) -> dict[str, str]:
        if node.tag == NULL:
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, f"box 'env' must be a mapping of NAME: value, not {kind(node)}")
            return {}
        env: dict[str, str] = {}
        for key, value in self.pairs(node):
            name = str(key.value)
            if not _ENV_NAME.fullmatch(name):
                # Caught here, located: at run time 'A=B' would crash the process spawn
                # and a newline would forge a second variable.
                shown = repr(name) if len(name) <= 60 else repr(name[:59]) + "…"
                self.error(
                    key,
                    f"box env name {shown} is not a valid environment variable name: use "
                    "letters, digits and _ and do not start with a digit",
                )
                continue
            # Wercker upper-cased box env keys (docker/box.go dockerEnv); keep that.
            env[name.upper()] = self.scalar(value, name)
        return env

    # -- scalars ----------------------------------------------------------------------------

    def scalar(self, node: Node, option: str) -> str:
        """The text of an option value as written; lists are joined, see module docstring."""
        if isinstance(node, ScalarNode):
            return scalar_text(node, option)
        if isinstance(node, SequenceNode):
            texts = []
            for item in node.value:
                if not isinstance(item, ScalarNode):
                    self.error(
                        item,
                        f"'{option}' must be a list of plain values, not a list "
                        f"holding {kind(item)}",
                    )
                    return ""
                texts.append(scalar_text(item, option))
            return shlex.join(texts) if option in schema.WORD_OPTIONS else ",".join(texts)
        assert isinstance(node, MappingNode)
        if option in schema.KV_OPTIONS:
            words = []
            for key, value in self.pairs(node):
                if not isinstance(value, ScalarNode):
                    self.error(value, f"'{option}' values must be plain text")
                    return ""
                words.append(f"{key.value}={scalar_text(value, option)}")
            return shlex.join(words)
        self.error(node, f"'{option}' must be text, not a mapping")
        return ""
