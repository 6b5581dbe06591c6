"""One configuration from several files: a shared base and small per-gate files.

``kiosk.toml`` is read first, then every ``*.toml`` in the ``kiosk.d`` folder beside it, in
name order (``10-site.toml`` before ``20-gate.toml``). A later file's key overrides an earlier
one's; tables are merged key by key; anything else, arrays of tables ([[policy.hours]],
[[policy.rule]]) included, is replaced as a whole by the later file, so that a gate's opening
hours are exactly the ones its file lists, never a mix of two files' windows.

The merge keeps, for every key, the file it came from (:attr:`Merged.sources`), so that a
problem found later names that file, and `kiosk config check --show` can say where each value
was set. A missing ``kiosk.d`` is fine; names not ending in ``.toml`` and hidden files (an
editor's ``.20-gate.toml.swp``) are ignored; every unreadable or broken file is reported at
once, each naming itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config.values import read_toml
from kiosk.errors import ConfigError

DROP_IN_DIR = "kiosk.d"

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Merged:
    """The merged TOML document, the files read (in order) and the file of every key path.

    ``sources`` has one entry per table and per value: ``("kiosk",)`` is the last file that
    wrote the [kiosk] table, ``("kiosk", "id")`` the file whose ``id`` won, and
    ``("policy", "hours")`` the file whose [[policy.hours]] tables are used.
    """

    data: dict[str, Any]
    files: tuple[Path, ...]
    sources: dict[KeyPath, Path]

    def file_of(self, key_path: KeyPath) -> Path:
        """The file that set ``key_path``, else the nearest enclosing table's, else the base
        file (where a key that is set nowhere would go)."""
        for n in range(len(key_path), 0, -1):
            found = self.sources.get(key_path[:n])
            if found is not None:
                return found
        return self.files[0]


def config_files(path: Path) -> list[Path]:
    """``path`` and the ``kiosk.d/*.toml`` beside it, in the order they are merged."""
    folder = path.parent / DROP_IN_DIR
    try:
        if not folder.exists():
            return [path]
        if not folder.is_dir():
            raise ConfigError([f"{folder}: not a folder (per-gate files go in a folder)"])
        names = sorted(
            p.name for p in folder.iterdir() if p.suffix == ".toml" and not p.name.startswith(".")
        )
    except OSError as exc:
        raise ConfigError([f"{folder}: cannot list: {exc.strerror or exc}"]) from exc
    return [path, *(folder / name for name in names)]


def merge_files(path: Path) -> Merged:
    """Read and merge ``path`` and its ``kiosk.d`` files; ConfigError naming every file that
    cannot be read or is not valid TOML."""
    files = config_files(path)
    data: dict[str, Any] = {}
    sources: dict[KeyPath, Path] = {}
    problems: list[str] = []
    for file in files:
        try:
            doc = read_toml(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        _merge(data, doc, (), file, sources)
    if problems:
        raise ConfigError(problems)
    return Merged(data, tuple(files), sources)


def _merge(
    into: dict[str, Any], doc: dict[str, Any], at: KeyPath, file: Path, sources: dict[KeyPath, Path]
) -> None:
    for key, value in doc.items():
        here = (*at, key)
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            sources[here] = file
            _merge(into[key], value, here, file, sources)
            continue
        # Replaced as a whole: forget where the old value's parts came from.
        for old in [p for p in sources if p[: len(here)] == here]:
            del sources[old]
        into[key] = _copy(value)
        _record(value, here, file, sources)


def _record(value: Any, at: KeyPath, file: Path, sources: dict[KeyPath, Path]) -> None:
    sources[at] = file
    if isinstance(value, dict):
        for key, item in value.items():
            _record(item, (*at, key), file, sources)


def _copy(value: Any) -> Any:
    """A copy of the tables (merging later files must not change an earlier file's document)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
