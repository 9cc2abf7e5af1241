"""Reading a config file's YAML within limits: size, nesting depth and alias expansion, checked before anything walks the tree.

A 700-byte file of nested aliases ("billion laughs") is a few hundred nodes
for the YAML composer, which shares them, but every later walk — the
``${NAME}`` substitution, pydantic — expands them into billions. So the
composed node graph is walked once, iteratively, counting every node as the
expansion would visit it, and refused past a budget no real config comes
near. The composer itself recurses per nesting level, so a very deep file is
caught as a ``RecursionError`` and told in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config with hundreds of cameras is a few hundred KiB
MAX_DEPTH = 32  # the deepest real key path is about six levels
MAX_EXPANDED_NODES = 200_000  # scalars, lists and mappings, counted through aliases


def read_config_text(path: Path) -> str:
    """The file's text, refused when it is too large or not UTF-8.

    Raises:
        ConfigError: one line naming the file and what to fix.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config file is much smaller"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None


def load_yaml(text: str, name: str) -> Any:
    """Parse one YAML document with the safe loader, within the depth and expansion limits.

    Raises:
        ConfigError: for invalid YAML, too deep a nesting or too large an expansion.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(
                f"{name} is nested too deeply (more than {MAX_DEPTH} levels are never needed)"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name} is not valid YAML: {_one_line(exc)}") from None
        if node is None:
            return None
        check_node(node, name)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name} is not valid YAML: {_one_line(exc)}") from None
    finally:
        loader.dispose()


def check_node(root: yaml.Node, name: str) -> None:
    """Walk the composed graph as an expansion would, without recursion; raise past a limit.

    Raises:
        ConfigError: naming the limit that was passed.
    """
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    visited = 0
    while stack:
        node, depth = stack.pop()
        visited += 1
        if visited > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{name} expands to more than {MAX_EXPANDED_NODES} values "
                "(YAML aliases referring to aliases?); write the values out"
            )
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{name} is nested too deeply (more than {MAX_DEPTH} levels are never needed)"
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"
