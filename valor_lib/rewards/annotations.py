"""Hand annotations of policy outputs for the verifier error analysis: the CSV format and a labelling widget.

CSV columns: ``output_id, query, plan, code``, then one column per head (``format, syntax, logic, attribute,
spatial, adherence``) holding 1, 0 or nothing (not labelled yet), and a free-text ``notes`` column. The
interpreter heads (format, syntax) come pre-filled from the interpreters; annotators label the four verifier
heads. :class:`AnnotationWidget` (JupyterLab, ipywidgets from the ``lab`` extra) steps through the file and
saves after every change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from valor_lib.rewards.heads import HEADS, VERIFIER_HEADS

ID_COLUMNS = ("output_id", "query", "plan", "code")
COLUMNS = (*ID_COLUMNS, *HEADS, "notes")


def annotation_frame(outputs: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A table in the annotation format from records with ``output_id, query, plan, code`` and any heads
    already known (missing heads stay empty)."""
    rows = []
    for out in outputs:
        missing = [c for c in ID_COLUMNS if c not in out]
        if missing:
            raise ValueError(f"output {out.get('output_id')!r} lacks {missing}")
        rows.append({c: out.get(c) for c in COLUMNS})
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["notes"] = frame["notes"].fillna("")
    return _checked(frame, "outputs")


def _checked(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; expected {list(COLUMNS)}")
    if frame["output_id"].duplicated().any():
        raise ValueError(f"{where}: output ids repeat: {sorted(frame.loc[frame['output_id'].duplicated(), 'output_id'])}")
    for head in HEADS:
        values = pd.to_numeric(frame[head], errors="coerce")
        bad = frame[head].notna() & ~values.isin([0, 1])
        if bad.any():
            raise ValueError(f"{where}: column {head!r} must hold 0, 1 or nothing; row {int(bad.idxmax())} has "
                             f"{frame.loc[bad.idxmax(), head]!r}")
        frame[head] = values.astype("Int64")
    return frame[list(COLUMNS)]


def write_annotations(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write an annotation table as CSV (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _checked(frame.copy(), str(path)).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def read_annotations(path: str | Path) -> pd.DataFrame:
    """Read and validate an annotation CSV (heads as nullable 0/1 integers)."""
    frame = pd.read_csv(path, dtype={"output_id": str, "query": str, "plan": str, "code": str, "notes": str},
                        keep_default_na=False, na_values={h: [""] for h in HEADS})
    return _checked(frame, str(path))


def response_text(plan: str, code: str) -> str:
    """A response in the policy's format rebuilt from an annotated plan and program."""
    return f"<plan>\n{plan}\n</plan>\n<answer>\n{code}\n</answer>"


def labelled(frame: pd.DataFrame, heads: Iterable[str] = VERIFIER_HEADS) -> pd.DataFrame:
    """The rows whose given heads are all labelled."""
    return frame[frame[list(heads)].notna().all(axis=1)]


class AnnotationWidget:
    """Label outputs by hand in JupyterLab: query, plan and code on the left, one toggle per verifier head,
    previous/next, and a note; every change is saved to the CSV at once. Display with ``widget.show()``."""

    def __init__(self, path: str | Path, start: int | None = None):
        import ipywidgets as widgets

        self.path = Path(path)
        self.frame = read_annotations(self.path)
        if self.frame.empty:
            raise ValueError(f"{self.path} has no outputs to label")
        unlabelled = self.frame.index[self.frame[list(VERIFIER_HEADS)].isna().any(axis=1)]
        self.index = start if start is not None else (int(unlabelled[0]) if len(unlabelled) else 0)
        self._w = widgets
        self.text = widgets.HTML()
        self.toggles = {h: widgets.ToggleButtons(options=[("unset", None), ("0", 0), ("1", 1)], description=h)
                        for h in VERIFIER_HEADS}
        self.notes = widgets.Text(description="notes", layout=widgets.Layout(width="95%"))
        self.status = widgets.Label()
        previous, following = widgets.Button(description="◀ previous"), widgets.Button(description="next ▶")
        previous.on_click(lambda _: self.go(self.index - 1))
        following.on_click(lambda _: self.go(self.index + 1))
        for toggle in self.toggles.values():
            toggle.observe(self._changed, names="value")
        self.notes.observe(self._changed, names="value")
        controls = widgets.VBox([*self.toggles.values(), self.notes, widgets.HBox([previous, following]), self.status])
        self.box = widgets.HBox([self.text, controls])
        self._loading = False
        self.go(self.index)

    def go(self, index: int) -> None:
        """Show output ``index`` (clamped to the file)."""
        self.index = max(0, min(index, len(self.frame) - 1))
        row = self.frame.iloc[self.index]
        self._loading = True
        for head, toggle in self.toggles.items():
            toggle.value = None if pd.isna(row[head]) else int(row[head])
        self.notes.value = str(row["notes"] or "")
        self._loading = False
        self.text.value = (f"<b>{self.index + 1}/{len(self.frame)} · {row['output_id']}</b><br><b>Query:</b> "
                           f"{_html(row['query'])}<br><b>Plan:</b><pre>{_html(row['plan'])}</pre><b>Code:</b>"
                           f"<pre>{_html(row['code'])}</pre>")
        self._report()

    def _changed(self, _: Any) -> None:
        if self._loading:
            return
        for head, toggle in self.toggles.items():
            self.frame.at[self.frame.index[self.index], head] = toggle.value
        self.frame.at[self.frame.index[self.index], "notes"] = self.notes.value
        write_annotations(self.frame, self.path)
        self._report()

    def _report(self) -> None:
        done = len(labelled(self.frame))
        self.status.value = f"{done}/{len(self.frame)} outputs fully labelled · saved to {self.path.name}"

    def show(self) -> Any:
        from IPython.display import display

        display(self.box)
        return self.box


def _html(text: Any) -> str:
    import html

    return html.escape(str(text))
