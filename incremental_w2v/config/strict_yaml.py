"""Strict, safe YAML loading that remembers where every key was written.

Only the plain YAML types are accepted (mappings, sequences, strings,
numbers, booleans, null); any other tag (``!!python/object`` …) is an error.
Duplicate keys are errors. Aliases are expanded with a budget, so an alias
bomb fails fast instead of eating memory. Every value's key path maps to its
line, so schema errors can say where to look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from incremental_w2v.errors import ConfigError, InputMissingError

MAX_BYTES = 1 << 20  # a config is a page of text; anything bigger is a mistake or an attack
MAX_NODES = 100_000
MAX_DEPTH = 64

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
Path_ = tuple[str | int, ...]


@dataclass
class LoadedYaml:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    source: str = "<config>"
    # Problems found while reading (duplicate keys, forbidden tags); reported
    # together with the schema's problems so the user sees everything at once.
    problems: list[str] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def load_file(path: Path) -> LoadedYaml:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputMissingError(
            f"config file {path} does not exist", hint="check the path you passed"
        ) from None
    if size > MAX_BYTES:
        raise ConfigError(f"{path}: config file is {size} bytes; at most {MAX_BYTES} are accepted")
    try:
        with path.open("rb") as handle:  # a pipe or device reports size 0: read within bounds
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"{path}: config is larger than {MAX_BYTES} bytes")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: config is not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
    return load_text(text, str(path))


def load_text(text: str, source: str = "<config>") -> LoadedYaml:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        snippet = ""
        if mark is not None:
            lines = text.splitlines()
            if 0 <= mark.line < len(lines):
                snippet = f"\n    {lines[mark.line]}\n    {' ' * mark.column}^"
        raise ConfigError(
            f"{source}: YAML syntax error at {where}: {exc.problem}{snippet}",
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}") from None
    loaded = LoadedYaml(data=None, source=source)
    if node is None:
        loaded.data = {}
        return loaded
    builder = _Builder(loaded)
    loaded.data = builder.build(node, (), 0)
    loaded.problems = builder.problems
    return loaded


class _Builder:
    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.nodes = 0
        self.problems: list[str] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def where(self, node: yaml.Node) -> str:
        return f"line {node.start_mark.line + 1}"

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigError(
                f"{self.loaded.source}: the config is too large or too deeply nested "
                f"(more than {MAX_NODES} values or {MAX_DEPTH} levels, aliases expanded)",
                hint="a config is a short document; remove anchors/aliases that multiply it",
            )
        self.loaded.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                return self._bad_tag(node, path)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(f"{_dotted(path)} ({self.where(key_node)}): "
                                         "merge keys ('<<') are not supported")
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_TAGS:
                    self.problems.append(
                        f"{_dotted(path)} ({self.where(key_node)}): keys must be plain strings"
                    )
                    continue
                key = str(key_node.value)
                if key in result:
                    first = self.loaded.lines.get((*path, key))
                    self.problems.append(
                        f"{_dotted((*path, key))} ({self.where(key_node)}): duplicate key "
                        f"(first defined on line {first})"
                    )
                    continue
                self.loaded.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                return self._bad_tag(node, path)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag not in _PLAIN_TAGS:
            return self._bad_tag(node, path)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(f"{_dotted(path)} ({self.where(node)}): {exc}")
            return None

    def _bad_tag(self, node: yaml.Node, path: Path_) -> None:
        self.problems.append(
            f"{_dotted(path)} ({self.where(node)}): the tag {node.tag!r} is not allowed; "
            "only plain YAML values (strings, numbers, booleans, lists, mappings) are"
        )
        return None


def _dotted(path: Path_) -> str:
    if not path:
        return "<top level>"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


dotted = _dotted
