"""The YAML node graph of a wercker.yml → ``bot.wercker.model`` objects, with problems.

``read(text, filename)`` is the only entry point (``parse.load_text`` wraps it with lint).
Steps, boxes and option values are read by ``stepnodes``; YAML itself by ``yamlnodes``.
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
- a top-level key that only holds shared YAML is ignored silently, as Wercker ignored it: its
  value, or a node inside it, carries an anchor (``.docker-credentials: &creds {…}``, then
  ``<<: *creds`` elsewhere) and it is not pipeline-shaped (``holds_shared_yaml``). Wercker read
  every such key as a pipeline, and one whose extra keys are not step lists failed to decode
  and vanished without a word (spec §1.2, §1.3); reporting its keys as broken deploy targets
  would be a false error. An anchored mapping that *is* pipeline-shaped (it has steps or
  deploy targets, and every key that is not a pipeline key holds a list) stays a pipeline, as
  in Wercker; an un-anchored mapping keeps its errors, since it is more likely a broken
  pipeline;
- ``source-dir`` inside a pipeline is an error (steps would run in the wrong directory); the
  timeouts inside a pipeline are a warning (the defaults still apply);
- YAML lists in options are joined with commas, or with ``shlex.join`` for shell-word options;
  a mapping under ``env``/``labels``/``build-args`` becomes ``NAME=value`` words.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.wercker import schema
from bot.wercker.model import Loc, PipelineSpec, Problem, WerckerFile
from bot.wercker.stepnodes import StepReader
from bot.wercker.yamlnodes import NULL, alias_blowup, compose, file_error, kind, raw, yaml_error

__all__ = ["file_error", "read"]

_KNOWN_OPTIONS = frozenset().union(*schema.STEP_OPTIONS.values(), schema.SERVICE_KEYS, {"port"})


def read(text: str, filename: str) -> tuple[WerckerFile | None, list[Problem]]:
    """The file and every structural problem; ``None`` when nothing usable was read."""
    return _Reader(filename).read(text)


class _Reader(StepReader):
    """One pass over the node graph; collects problems instead of stopping at the first."""

    # -- the file ---------------------------------------------------------------------------

    def read(self, text: str) -> tuple[WerckerFile | None, list[Problem]]:
        try:
            root, self.anchored = compose(text)
        except yaml.YAMLError as err:
            return None, [yaml_error(err, text, self.file)]
        except RecursionError:
            return None, [file_error(self.file, "is nested too deeply to read")]
        if root is not None:
            blowup = alias_blowup(root, self.file)
            if blowup is not None:
                return None, [blowup]
        if root is None or (isinstance(root, ScalarNode) and root.tag == NULL):
            problem = Problem(
                Loc(self.file, 1, 1),
                "error",
                f"{self.file} is empty",
                "add a pipeline, e.g. 'build:' with 'steps:'",
            )
            return None, [problem]
        if not isinstance(root, MappingNode):
            hint = "write settings as 'key: value'" if "=" in raw(root) else None
            self.error(
                root,
                f"{self.file} must be a mapping of pipelines (e.g. 'build:'), not {kind(root)}",
                hint,
            )
            return None, self.problems
        wf = WerckerFile(path=self.file)
        for key_node, value in self.pairs(root):
            self.top_level(wf, raw(key_node), key_node, value)
        return wf, self.problems

    def top_level(self, wf: WerckerFile, key: str, key_node: Node, value: Node) -> None:
        if key not in schema.TOP_LEVEL_KEYS and self.holds_shared_yaml(value):
            return  # see the module docstring: Wercker dropped it silently, and so do we
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
        elif value.tag == NULL:
            self.warn(key_node, f"pipeline '{key}' is empty; it is ignored")
        else:
            self.warn(
                key_node,
                f"top-level key '{key}' is not a pipeline (its value is "
                f"{kind(value)}); it is ignored",
            )

    def holds_shared_yaml(self, value: Node) -> bool:
        """True when ``value`` (or a node inside it) carries an anchor and is not
        pipeline-shaped. Pipeline-shaped is what Wercker could decode as a pipeline (spec
        §1.3): a mapping with ``steps``, ``after-steps`` or a deploy target, whose every key
        that is not a pipeline key holds a list. Visits each node once, without recursion."""
        if isinstance(value, MappingNode):
            entries = self.pairs(value)
            extra = [v for k, v in entries if k.value not in schema.PIPELINE_KEYS]
            has_steps = any(k.value in ("steps", "after-steps") for k, _ in entries)
            if (has_steps or extra) and all(isinstance(v, SequenceNode) for v in extra):
                return False
        seen: set[int] = set()
        stack = [value]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if id(node) in self.anchored:
                return True
            if isinstance(node, SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, MappingNode):
                stack.extend(part for pair in node.value for part in pair)
        return False

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
            elif value.tag == NULL:
                self.warn(k_node, f"deploy target '{key}' in pipeline '{name}' is empty")
                spec.targets[key] = []
            else:
                self.error(
                    k_node,
                    f"'{key}' in pipeline '{name}' must be a list of steps "
                    f"(a deploy target), not {kind(value)}",
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
