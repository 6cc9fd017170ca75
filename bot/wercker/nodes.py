"""The YAML node graph of a wercker.yml → ``bot.wercker.model`` objects, with problems.

``read(text, filename)`` is the only entry point (``parse.load_text`` wraps it with lint).
We compose the node graph instead of constructing Python objects so that (a) every node
keeps its mark, and (b) scalars keep the text the user wrote: ``tag: 1.10`` stays ``"1.10"``,
``2018-01-01`` stays a string, ``3000:30`` is not read as sexagesimal 180030 (PyYAML's YAML 1.1
resolver would do all of these; Wercker's Go parser lost floats entirely).

Decisions where Wercker's behaviour was unhelpful or the spec silent (see also ``schema``):
- a pipeline written as a bare list of steps is accepted, with a warning;
- ``- script: Install Dep`` with sibling options: the inline text becomes the display name
  (unless a ``name`` is given) and a warning says how to write it;
- booleans keep their written text except in boolean options (``disable-sync: yes`` → "true");
- a top-level key that is a step option (``ports``, ``image`` …) or a scalar is ignored with a
  warning, never taken for a pipeline;
- ``source-dir`` inside a pipeline is an error (steps would run in the wrong directory); the
  timeouts inside a pipeline are a warning (the defaults still apply);
- YAML lists in options are joined with commas, or with ``shlex.join`` for shell-word options;
  a mapping under ``env``/``labels``/``build-args`` becomes ``NAME=value`` words.
"""

from __future__ import annotations

import re
import shlex

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.wercker import schema
from bot.wercker.model import BoxSpec, Loc, PipelineSpec, Problem, StepSpec, WerckerFile

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # POSIX portable names, ASCII only
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_KNOWN_OPTIONS = frozenset().union(
    *schema.STEP_OPTIONS.values(), schema.SERVICE_KEYS, {"port"}
)


def read(text: str, filename: str) -> tuple[WerckerFile | None, list[Problem]]:
    """The file and every structural problem; ``None`` when nothing usable was read."""
    return _Reader(filename).read(text)


def file_error(filename: str, what: str) -> Problem:
    return Problem(Loc(filename, 1, 1), "error", f"{filename} {what}")


class _Loader(yaml.SafeLoader):
    """SafeLoader; only ``compose`` is used, so no Python objects are ever constructed."""


def _yaml_error(err: yaml.YAMLError, text: str, filename: str) -> Problem:
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
        hint = (
            "a 'key: value' line cannot follow a plain list item; to give a step options "
            "write '- step-id:' and indent its options under it"
        )
    elif "expected <block end>" in problem:
        hint = "check this line's indentation against the lines above it"
    return Problem(Loc(filename, line, col), "error", message, hint)


class _Reader:
    """One pass over the node graph; collects problems instead of stopping at the first."""

    def __init__(self, filename: str) -> None:
        self.file = filename
        self.problems: list[Problem] = []
        self.pipeline: str | None = None  # tags problems with the pipeline they lie in
        self.seen_pairs: dict[int, list[tuple[ScalarNode, Node]]] = {}

    # -- problems ---------------------------------------------------------------------------

    def loc(self, node: Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loc(node), "error", message, hint, self.pipeline))

    def warn(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loc(node), "warning", message, hint, self.pipeline))

    # -- the file ---------------------------------------------------------------------------

    def read(self, text: str) -> tuple[WerckerFile | None, list[Problem]]:
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.YAMLError as err:
            return None, [_yaml_error(err, text, self.file)]
        except RecursionError:
            return None, [file_error(self.file, "is nested too deeply to read")]
        if root is not None:
            blowup = _alias_blowup(root, self.file)
            if blowup is not None:
                return None, [blowup]
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL):
            problem = Problem(
                Loc(self.file, 1, 1),
                "error",
                f"{self.file} is empty",
                "add a pipeline, e.g. 'build:' with 'steps:'",
            )
            return None, [problem]
        if not isinstance(root, MappingNode):
            hint = "write settings as 'key: value'" if "=" in _raw(root) else None
            self.error(
                root,
                f"{self.file} must be a mapping of pipelines (e.g. 'build:'), not {_kind(root)}",
                hint,
            )
            return None, self.problems
        wf = WerckerFile(path=self.file)
        for key_node, value in self.pairs(root):
            self.top_level(wf, _raw(key_node), key_node, value)
        return wf, self.problems

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
                self.error(key, f"a key must be text, not {_kind(key)}")
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

    def top_level(self, wf: WerckerFile, key: str, key_node: Node, value: Node) -> None:
        if key == "box":
            wf.box = self.box(value)
        elif key == "services":
            wf.services = self.services(value)
        elif key in ("command-timeout", "no-response-timeout"):
            minutes = self.timeout(key, value)
            if key == "command-timeout":
                wf.command_timeout = minutes
            else:
                wf.no_response_timeout = minutes
        elif key == "source-dir":
            wf.source_dir = self.scalar(value, key) or None
        elif key == "ignore-file":
            self.warn(key_node, "'ignore-file' is not used by wercker-bot; it is ignored")
        elif key == "workflows":
            self.warn(
                key_node,
                "'workflows' is not used: the bot's config chooses which "
                "pipelines run (repos.<name>.pipelines)",
            )
        elif key in _KNOWN_OPTIONS and not isinstance(value, MappingNode):
            self.warn(
                key_node,
                f"top-level key '{key}' is a step or box option, not a pipeline; it is ignored",
                "move it into the box or step it belongs to",
            )
        elif isinstance(value, MappingNode):
            self.pipeline = key
            wf.pipelines[key] = self.pipeline_map(key, key_node, value)
            self.pipeline = None
        elif isinstance(value, SequenceNode):
            self.pipeline = key
            self.warn(
                key_node,
                f"pipeline '{key}' is a bare list of steps; read as its "
                "'steps' (Wercker silently dropped such pipelines)",
                f"write '{key}:' then '  steps:' above the list",
            )
            wf.pipelines[key] = PipelineSpec(key, self.loc(key_node), steps=self.steps(value))
            self.pipeline = None
        elif value.tag == _NULL:
            self.warn(key_node, f"pipeline '{key}' is empty; it is ignored")
        else:
            self.warn(
                key_node,
                f"top-level key '{key}' is not a pipeline (its value is "
                f"{_kind(value)}); it is ignored",
            )

    def timeout(self, key: str, node: Node) -> int | None:
        text = self.scalar(node, key)
        if not re.fullmatch(r"\s*[0-9]+\s*", text) or int(text) <= 0:
            default = (
                schema.DEFAULT_COMMAND_TIMEOUT_MINUTES
                if key == "command-timeout"
                else schema.DEFAULT_NO_RESPONSE_TIMEOUT_MINUTES
            )
            self.warn(
                node,
                f"'{key}' must be a whole number of minutes above 0, not "
                f"'{text}'; the default of {default} minutes applies",
            )
            return None
        minutes = int(text)
        if minutes > schema.TIMEOUT_CAP_MINUTES:
            self.warn(
                node,
                f"'{key}' is capped at {schema.TIMEOUT_CAP_MINUTES} minutes; "
                f"{minutes} is read as {schema.TIMEOUT_CAP_MINUTES}",
            )
            return schema.TIMEOUT_CAP_MINUTES
        return minutes

    # -- pipelines ----------------------------------------------------------------------------

    def pipeline_map(self, name: str, key_node: Node, node: MappingNode) -> PipelineSpec:
        spec = PipelineSpec(name, self.loc(key_node))
        for k_node, value in self.pairs(node):
            key = k_node.value
            if key == "steps":
                spec.steps = self.steps(value)
            elif key == "after-steps":
                spec.after_steps = self.steps(value)
            elif key == "box":
                spec.box = self.box(value)
            elif key == "services":
                spec.services = self.services(value)
            elif key == "base-path":
                spec.base_path = self.base_path(value)
            elif key == "docker":
                text = self.scalar(value, "docker")
                if text not in ("true", "false", ""):
                    self.warn(value, f"'docker' must be true or false, not '{text}'")
                spec.docker = text == "true"
            elif key == "source-dir":
                self.error(
                    k_node,
                    f"'source-dir' is a top-level key; inside pipeline '{name}' "
                    "it would be ignored and steps would run in the wrong directory",
                    "move it to the top level of the file",
                )
            elif key in schema.TOP_ONLY_KEYS:
                self.warn(
                    k_node,
                    f"'{key}' is a top-level key; inside pipeline '{name}' it is ignored",
                    "move it to the top level of the file",
                )
            elif isinstance(value, SequenceNode):
                spec.targets[key] = self.steps(value)
            elif value.tag == _NULL:
                self.warn(k_node, f"deploy target '{key}' in pipeline '{name}' is empty")
                spec.targets[key] = []
            else:
                self.error(
                    k_node,
                    f"'{key}' in pipeline '{name}' must be a list of steps "
                    f"(a deploy target), not {_kind(value)}",
                    "a pipeline holds steps, after-steps, box, services, base-path, "
                    "docker, and named step lists",
                )
        if not spec.steps and not spec.targets:
            self.warn(key_node, f"pipeline '{name}' has no steps")
        return spec

    def base_path(self, node: Node) -> str | None:
        text = self.scalar(node, "base-path")
        if not text:
            return None
        if not text.startswith("/"):
            self.error(node, f"'base-path' must be an absolute path, not '{text}'")
            return None
        return text[:-1] if len(text) > 1 and text.endswith("/") else text

    # -- steps --------------------------------------------------------------------------------

    def steps(self, node: Node) -> list[StepSpec]:
        if node.tag == _NULL:
            return []
        if not isinstance(node, SequenceNode):
            self.error(
                node, f"steps must be a list (each item starting with '- '), not {_kind(node)}"
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
            if node.tag == _NULL or not node.value.strip():
                self.error(node, "empty step")
                return None
            step_id = node.value.strip()
            return StepSpec(step_id, self.loc(node), step_id)
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
        elif value.tag == _NULL:
            if not siblings and step_id == "script":
                self.error(id_node, "step script is empty", "give it 'code:' (indented under it)")
                return None
            option_pairs = siblings
        else:
            inline_name = _raw(value)
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
            if isinstance(value, ScalarNode) and value.tag == _NULL:
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
        if node.tag == _NULL:
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
            self.error(node, f"a box must be an image name or a mapping, not {_kind(node)}")
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
        if node.tag == _NULL:
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, f"box 'env' must be a mapping of NAME: value, not {_kind(node)}")
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
            return _scalar_text(node, option)
        if isinstance(node, SequenceNode):
            texts = []
            for item in node.value:
                if not isinstance(item, ScalarNode):
                    self.error(
                        item,
                        f"'{option}' must be a list of plain values, not a list "
                        f"holding {_kind(item)}",
                    )
                    return ""
                texts.append(_scalar_text(item, option))
            return shlex.join(texts) if option in schema.WORD_OPTIONS else ",".join(texts)
        assert isinstance(node, MappingNode)
        if option in schema.KV_OPTIONS:
            words = []
            for key, value in self.pairs(node):
                if not isinstance(value, ScalarNode):
                    self.error(value, f"'{option}' values must be plain text")
                    return ""
                words.append(f"{key.value}={_scalar_text(value, option)}")
            return shlex.join(words)
        self.error(node, f"'{option}' must be text, not a mapping")
        return ""


MAX_EXPANDED_VALUES = 1_000_000
MAX_EXPANDED_CHARS = 4_000_000
"""With aliases expanded, a file may hold at most this many values and characters of text:
a few aliases (``<<: *defaults``) are far below it, and a 1 MB file without aliases cannot
reach it, but ``[&t '…', *t, *t, …]`` ("billion laughs") would make gigabytes."""


def _alias_blowup(root: Node, filename: str) -> Problem | None:
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


def _scalar_text(node: ScalarNode, option: str) -> str:
    if node.tag == _NULL:
        return ""
    if node.tag == _BOOL:
        lowered = node.value.lower()
        if lowered in ("true", "false"):
            return lowered  # never Python's "True": disable-sync compares with "true"
        if option in schema.BOOL_OPTIONS:
            return "true" if lowered in ("yes", "on", "y") else "false"
    return str(node.value)


def _raw(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else ""


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "empty"
    return "a plain value"  # never echo the value: it may be a credential
