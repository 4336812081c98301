"""Where things live: the repository root (found from ``dvc.yaml``) and its standard folders."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_MARKER = "dvc.yaml"
ROOT_ENV = "VALOR_ROOT"


class MissingDataError(FileNotFoundError):
    """A stage needs a file or folder that an earlier stage should have written."""


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: ``$VALOR_ROOT`` if set, else the nearest parent of ``start`` (default: cwd)
    holding ``dvc.yaml``, else the checkout this package was installed from."""
    if env := os.environ.get(ROOT_ENV):
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ROOT_MARKER).is_file():
            return candidate
    package_checkout = Path(__file__).resolve().parent.parent
    if (package_checkout / ROOT_MARKER).is_file():
        return package_checkout
    raise FileNotFoundError(
        f"cannot find the repository root: no {ROOT_MARKER} above {here}; run from inside the checkout "
        f"or set ${ROOT_ENV}"
    )


def data_dir(*parts: str) -> Path:
    """``data/...`` under the repository root."""
    return repo_root().joinpath("data", *parts)


def toy_dir(*parts: str) -> Path:
    """``data/toy/...``: the generated toy world."""
    return data_dir("toy", *parts)


def results_dir(stage: str, *parts: str, create: bool = True) -> Path:
    """``results/<stage>/...``; the stage folder is created unless ``create`` is false."""
    base = repo_root() / "results" / stage
    if create:
        base.mkdir(parents=True, exist_ok=True)
    return base.joinpath(*parts)


def require(path: str | os.PathLike, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`MissingDataError` naming what to run first."""
    p = Path(path)
    if not p.exists():
        msg = f"missing {p}"
        if hint:
            msg += f": {hint}"
        raise MissingDataError(msg)
    return p
