"""Run one notebook as a pipeline stage: ``python -m valor_lib.pipeline notebooks/04_grpo_training.ipynb``.

The stage's section of params.yaml (profile applied, validated) and the common keys are injected into the
notebook's ``parameters`` cell with papermill; keys the cell does not declare are rejected before anything
runs. The executed notebook lands in ``results/<stage>/``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from valor_lib.params import ParamsError, resolve
from valor_lib.paths import repo_root, results_dir
from valor_lib.stage import set_offline

NOTEBOOK_NAME = re.compile(r"^(\d{2}[a-z]?)_(?P<section>[a-z0-9_]+)\.ipynb$")


def stage_name(notebook: str | Path) -> str:
    """``notebooks/04_grpo_training.ipynb`` -> ``grpo_training``."""
    match = NOTEBOOK_NAME.match(Path(notebook).name)
    if not match:
        raise ParamsError(f"notebook name {Path(notebook).name!r} is not 'NN_<stage>.ipynb'")
    return match["section"]


def declared_parameters(notebook: str | Path) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def run_notebook(notebook: str | Path, profile: str | None = None, log_output: bool = True) -> Path:
    """Execute a notebook stage with its injected params; return the executed copy's path."""
    import papermill

    root = repo_root()
    notebook = (root / notebook).resolve() if not Path(notebook).is_absolute() else Path(notebook)
    if not notebook.is_file():
        raise ParamsError(f"no notebook at {notebook}")
    section = stage_name(notebook)
    values = resolve(section, profile=profile)
    undeclared = sorted(set(values) - declared_parameters(notebook))
    if undeclared:
        raise ParamsError(
            f"params for {section!r} have keys the notebook's parameters cell does not declare: {undeclared}"
        )
    set_offline(values["offline"])
    out_dir = results_dir(section)
    final = out_dir / notebook.name
    partial = out_dir / f".{notebook.stem}.running.ipynb"
    try:
        papermill.execute_notebook(
            str(notebook), str(partial), parameters=values, cwd=str(root), log_output=log_output,
            progress_bar=False, kernel_name="python3",
        )
    finally:
        if partial.exists():
            os.replace(partial, final)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", help="path to notebooks/NN_<stage>.ipynb")
    parser.add_argument("--profile", help="override common.profile (toy or full)")
    parser.add_argument("--quiet", action="store_true", help="do not echo cell outputs")
    args = parser.parse_args(argv)
    try:
        run_notebook(args.notebook, profile=args.profile, log_output=not args.quiet)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
