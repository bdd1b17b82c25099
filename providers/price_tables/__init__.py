"""Price tables that ship with Tollgate, as data next to the providers that publish
them: one YAML file per table, named after the table. The proxy validates them with
the same schema as the tables in `config.yaml`.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent

BUILTIN_TABLE_NAMES: frozenset[str] = frozenset(path.stem for path in _HERE.glob("*.yaml"))


def builtin_table_text(name: str) -> str:
    """The YAML text of a built-in table; the caller parses it (exactly, as Decimals)."""
    if name not in BUILTIN_TABLE_NAMES:
        raise KeyError(name)
    return (_HERE / f"{name}.yaml").read_text(encoding="utf-8")


__all__ = ["BUILTIN_TABLE_NAMES", "builtin_table_text"]
