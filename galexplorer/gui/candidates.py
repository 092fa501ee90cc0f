"""The candidates table: every object ranked by the model, sortable and filterable, with
Export… (the same writer as ``galexplorer export``).

The model keeps the table as NumPy columns and sorts and filters with NumPy (a
``QSortFilterProxyModel`` calls Python per comparison: minutes at 10^6 rows); Qt only asks for
the rows on screen. Ids and catalogue columns stay in the store (on-disk columns): the model
reads the visible rows a page at a time, a whole column only when the user sorts or filters by
it (numbers, or text as compact bytes), sorts by id through the store's sorted id index, and
past :data:`ID_SCAN_MAX` objects filters ids by prefix through that index instead of scanning
every id for the text.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..label_scale import MAX_SCORE, MIN_SCORE, SCORES, format_prediction
from ..store.ondemand import as_text_value
from . import theme
from .colouring import SCORE_COLOURS
from .objectlist import elide_middle

INDEX_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
PAGE = 64                 # rows of an on-disk column read at a time for the cells on screen
PAGES_KEPT = 256
ID_SCAN_MAX = 1_000_000   # above this, "filter ids…" matches the beginning of ids (sorted index)
ROW_PX = 24               # a table row's height (its stamp is 2 px smaller)
PREDICTION_COLUMNS = ("score_mean",)   # shown on the 0–5 scale ("≥5"); sorted by the exact value


def on_disk(values) -> bool:
    """Whether a column reads from the store (not a NumPy array in memory)."""
    return not isinstance(values, np.ndarray)


def id_filter(ids, text: str) -> np.ndarray:
    """(N,) bool: objects whose id matches ``text``: contains it (case-insensitive), or for an
    on-disk id column of more than :data:`ID_SCAN_MAX` objects with a sorted index, begins with
    it (case-sensitive; milliseconds instead of a scan of every id)."""
    from ..store.ondemand import contains_text

    n = len(ids)
    if isinstance(ids, np.ndarray):
        t = text.lower()
        return np.fromiter((t in str(s).lower() for s in ids), bool, count=n)
    if n > ID_SCAN_MAX and getattr(ids, "indexed", False):
        keep = np.zeros(n, bool)
        keep[ids.starting_with(text)] = True
        return keep
    return contains_text(ids, text)


class RankedTableModel(QtCore.QAbstractTableModel):
    """Objects in ranked order, as table rows.

    ``columns`` maps a column name to an (N,) array in the store's object order (the same
    columns as :func:`galexplorer.active.ranking.ranked_table` writes); ``order`` is the ranking,
    best first. The rows shown (filtered, sorted) are positions in ``order``. Nothing is copied
    per row: a cell is ``columns[name][order[row]]``, read when Qt paints it.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cols: dict[str, np.ndarray] = {}
        self._names: list[str] = []
        self._order = np.empty(0, np.int64)
        self._rows = np.empty(0, np.int64)
        self._sort: tuple[str, bool] | None = None
        self._filter: tuple[float, float, str, str] = (-math.inf, math.inf, "", "")
        self.only: set[str] = set()     # boolean columns a row must have True ("disputed")
        self.mask: np.ndarray | None = None   # (N,) bool in store order: rows kept (My labels)
        self.thumbnails = None          # a ThumbnailCache: small stamps beside the ids
        self.icon_px = ROW_PX - 2
        self._pages: dict[tuple[str, int], np.ndarray] = {}   # on-disk cells of visible rows
        self._full: dict[str, np.ndarray] = {}   # on-disk columns read whole (sort / filter)
        self._id_key: tuple[object, np.ndarray] | None = None   # (id column, position in id order)
        self.headers: dict[str, tuple[str, str]] = {}   # column name → (header text, tooltip)

    def _new_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Forget what was read of on-disk columns that are replaced."""
        self._full = {k: v for k, v in self._full.items() if k in columns and columns[k] is self._cols.get(k)}
        if self._id_key is not None and columns.get("id") is not self._id_key[0]:
            self._id_key = None
        self._pages.clear()

    def whole(self, name: str) -> np.ndarray:
        """Column ``name`` in memory (read once from the store for on-disk columns: numbers as
        they are, text as compact UTF-8 bytes)."""
        values = self._cols[name]
        if not on_disk(values):
            return values
        if name not in self._full:
            self._full[name] = values.compact() if hasattr(values, "compact") else np.asarray(values)
        return self._full[name]

    def set_table(self, columns: dict[str, np.ndarray], order: np.ndarray) -> None:
        self.beginResetModel()
        self._new_columns(columns)
        self._cols = dict(columns)
        self._names = list(self._cols)
        self._order = np.asarray(order, np.int64)
        self._apply()
        self.endResetModel()

    def update_table(self, columns: dict[str, np.ndarray], order: np.ndarray) -> None:
        """New values and ranking for the same columns (after a score): the user's sort, filter
        and scroll position stay."""
        self.layoutAboutToBeChanged.emit()
        self._new_columns(columns)
        self._cols = dict(columns)
        self._order = np.asarray(order, np.int64)
        self._apply()
        self.layoutChanged.emit()
        self.refresh()

    def clear_sort(self) -> None:
        """Back to rank order."""
        self.layoutAboutToBeChanged.emit()
        self._sort = None
        self._apply()
        self.layoutChanged.emit()

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

    def column(self, name: str) -> np.ndarray:
        """A column in the store's object order (an on-disk column reads rows when indexed)."""
        return self._cols[name]

    @property
    def n_objects(self) -> int:
        return len(self._order)

    @property
    def visible_indices(self) -> np.ndarray:
        """Object indices of the rows shown, in display order."""
        return self._order[self._rows]

    def set_filter(self, lo: float, hi: float, text: str, column: str) -> None:
        self.beginResetModel()
        self._filter = (lo, hi, text.strip(), column)   # case kept: a prefix search by id needs it
        self._apply()
        self.endResetModel()

    def refresh(self) -> None:
        """Values changed in place (a new label): repaint the visible cells."""
        if len(self._rows) and self._names:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self._names) - 1))

    def sort(self, column: int, order=QtCore.Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self._names):
            return
        self.layoutAboutToBeChanged.emit()
        self._sort = (self._names[column], order == QtCore.Qt.SortOrder.DescendingOrder)
        self._apply()
        self.layoutChanged.emit()

    def _apply(self) -> None:
        order = self._order
        n = len(order)
        lo, hi, text, col = self._filter
        self._pages.clear()
        if not (text or self.only or self.mask is not None or (self._sort is not None and self._sort[0] in self._cols)
                or (col in self._cols and (lo > -math.inf or hi < math.inf))):
            self._rows = np.arange(n, dtype=np.int64)   # every row, in rank order: no N-long mask
            return
        keep = np.ones(n, bool)
        if col in self._cols and (lo > -math.inf or hi < math.inf) and self.whole(col).dtype.kind in "fiub":
            v = np.asarray(self.whole(col), dtype=np.float64)[order]
            keep &= (v >= lo) & (v <= hi)
        if text and "id" in self._cols:
            keep &= id_filter(self._cols["id"], text)[order]
        for name in self.only:
            if name in self._cols:
                keep &= np.asarray(self._cols[name], bool)[order]
        if self.mask is not None and len(self.mask) == len(order):
            keep &= self.mask[order]
        rows = np.flatnonzero(keep)
        if self._sort is not None and self._sort[0] in self._cols:
            name, desc = self._sort
            ids = self._cols[name]
            if name == "id" and on_disk(ids) and hasattr(ids, "sort_key"):
                if self._id_key is None or self._id_key[0] is not ids:   # read once per store
                    self._id_key = (ids, ids.sort_key())
                v = self._id_key[1][order[rows]]    # position in id order: no id is read
            else:
                v = self.whole(name)[order[rows]]
            if v.dtype.kind in "fiub":
                key = v.astype(np.float64)
                key = np.where(np.isnan(key), -np.inf if desc else np.inf, key)   # blanks last
                o = np.argsort(-key if desc else key, kind="stable")
            else:
                o = np.argsort(v if v.dtype.kind in "SU" else v.astype(str), kind="stable")
                if desc:
                    o = o[::-1]
            rows = rows[o]
        self._rows = rows

    def _cell(self, name: str, row: int, obj: int):
        """The value of column ``name`` at table row ``row`` (object ``obj``); an on-disk column
        is read a page of :data:`PAGE` visible rows at a time."""
        values = self._cols[name]
        if not on_disk(values):
            return values[obj]
        if name in self._full:
            return as_text_value(self._full[name][obj])
        page = row // PAGE
        got = self._pages.get((name, page))
        if got is None:
            if len(self._pages) >= PAGES_KEPT:
                self._pages.clear()
            objs = self._order[self._rows[page * PAGE:(page + 1) * PAGE]]
            got = self._pages[(name, page)] = np.asarray(values[objs])
        return got[row - page * PAGE]

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent=QtCore.QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QtCore.QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._names)

    def set_headers(self, headers: dict[str, tuple[str, str]]) -> None:
        """Header text and tooltip of columns whose meaning changes (the score column holds the
        anomaly prior before the first model); other columns show their name."""
        if headers != self.headers:
            self.headers = dict(headers)
            self.headerDataChanged.emit(QtCore.Qt.Orientation.Horizontal, 0, max(0, len(self._names) - 1))

    def headerData(self, section, orientation, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if orientation != QtCore.Qt.Orientation.Horizontal or not 0 <= section < len(self._names):
            return None
        name = self._names[section]
        text, tip = self.headers.get(name, (name, name))
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return text
        if role == QtCore.Qt.ItemDataRole.ToolTipRole:
            return tip
        return None

    def data(self, index: QtCore.QModelIndex, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        obj = int(self._order[self._rows[index.row()]])
        name = self._names[index.column()]
        v = self._cell(name, index.row(), obj)
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            if isinstance(v, (float, np.floating)):
                if not math.isfinite(float(v)):
                    return ""
                if name in PREDICTION_COLUMNS:
                    return format_prediction(float(v), digits=3)
                return f"{float(v):g}" if name == "label" else f"{float(v):.3f}"
            return elide_middle(str(v)) if name == "id" else str(v)
        if role == QtCore.Qt.ItemDataRole.ToolTipRole and name == "id":
            return str(v)          # the whole id (the cell elides a long one in the middle)
        if role == QtCore.Qt.ItemDataRole.ToolTipRole and name in PREDICTION_COLUMNS and \
                isinstance(v, (float, np.floating)) and not MIN_SCORE <= float(v) <= MAX_SCORE:
            return f"predicted {float(v):.3f}, beyond the {MIN_SCORE}–{MAX_SCORE} scale (ranked by this value)"
        if role == QtCore.Qt.ItemDataRole.TextAlignmentRole:
            if isinstance(v, (int, float, np.integer, np.floating)):
                return int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            return None
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and name == "label" and \
                isinstance(v, (float, np.floating)) and math.isfinite(float(v)):
            return QtGui.QColor(SCORE_COLOURS[int(np.clip(round(float(v)), MIN_SCORE, MAX_SCORE))])
        if role == QtCore.Qt.ItemDataRole.DecorationRole and name == "id" and self.thumbnails is not None:
            return self.thumbnails.pixmap(obj).scaled(
                self.icon_px, self.icon_px, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                QtCore.Qt.TransformationMode.SmoothTransformation)
        if role == INDEX_ROLE:
            return obj
        return None


def _number(text: str, default: float) -> float:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return default


class CandidatesPanel(QtWidgets.QWidget):
    """Signals:
        opened(int): a row was double-clicked (object index).
        exportRequested(): Export….
    """

    opened = QtCore.Signal(int)
    exportRequested = QtCore.Signal()
    labelViewChanged = QtCore.Signal()
    labelGalleryRequested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("CandidatesPanel")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(6)
        lay.addLayout(self._make_filter_bar())
        lay.addLayout(self._make_label_bar())
        lay.addWidget(self.counts)
        self._label_view_toggled(False)
        self.model = RankedTableModel(self)
        self.table = self._make_table()
        lay.addWidget(self.table, 1)
        # typing filters after a pause, so 10^6 ids are not scanned per key press
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self.apply_filter)
        self.text.textChanged.connect(self._timer.start)
        for w in (self.lo, self.hi):
            w.textChanged.connect(self._timer.start)
        self.column.currentIndexChanged.connect(self._timer.start)

    def _make_filter_bar(self) -> QtWidgets.QHBoxLayout:
        """The filters: id text, a column's range, disputed only; the count shown and Export…"""
        bar = QtWidgets.QHBoxLayout()
        self.text = QtWidgets.QLineEdit()
        self.text.setPlaceholderText("filter ids…")
        self.text.setClearButtonEnabled(True)
        self.text.setMinimumWidth(120)
        self.column = QtWidgets.QComboBox()
        self.column.setToolTip("the column the range applies to")
        self.column.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.lo = QtWidgets.QLineEdit()
        self.hi = QtWidgets.QLineEdit()
        for w, text in ((self.lo, "min"), (self.hi, "max")):
            w.setPlaceholderText(text)
            w.setValidator(QtGui.QDoubleValidator(w))
            w.setMaximumWidth(70)
        self.export = QtWidgets.QPushButton("Export…")
        self.export.setToolTip("write the ranked list (Ctrl+E), as `galexplorer export`")
        self.export.clicked.connect(self.exportRequested)
        self.disputed = QtWidgets.QCheckBox("disputed")
        self.disputed.setToolTip("only the objects the labellers disagree on")
        self.disputed.toggled.connect(self.apply_filter)
        self.count = QtWidgets.QLabel("")
        self.count.setObjectName("Dim")
        bar.addWidget(self.text, 2)
        bar.addWidget(self.column)
        bar.addWidget(self.lo)
        bar.addWidget(QtWidgets.QLabel("to"))
        bar.addWidget(self.hi)
        bar.addWidget(self.disputed)
        bar.addWidget(self.count)
        bar.addWidget(self.export)
        return bar

    def _make_label_bar(self) -> QtWidgets.QHBoxLayout:
        """My labels: everything labelled, filtered by score, labeller, note text (and "disputed");
        the counts per score go in ``self.counts``, a line of their own below."""
        mine = QtWidgets.QHBoxLayout()
        self.mine = QtWidgets.QCheckBox("My labels")
        self.mine.setToolTip("show only labelled objects, with counts per score")
        self.score = QtWidgets.QComboBox()
        self.score.addItem("any score", None)
        for s in SCORES:
            self.score.addItem(f"score {s}", s)
        self.user = QtWidgets.QComboBox()
        self.user.addItem("anyone", None)
        self.user.setToolTip("whose labels: anyone's (the consensus) or one labeller's")
        self.note_text = QtWidgets.QLineEdit()
        self.note_text.setPlaceholderText("note contains…")
        self.note_text.setClearButtonEnabled(True)
        self.in_gallery = QtWidgets.QPushButton("In gallery")
        self.in_gallery.setToolTip("show these labelled objects in the gallery")
        self.in_gallery.clicked.connect(self.labelGalleryRequested)
        self.counts = QtWidgets.QLabel("")
        self.counts.setObjectName("Dim")
        self.note_text.setMinimumWidth(110)
        for w in (self.mine, self.score, self.user):
            mine.addWidget(w)
        mine.addWidget(self.note_text, 1)
        mine.addWidget(self.in_gallery)
        self.mine.toggled.connect(self._label_view_toggled)
        for w in (self.score, self.user):
            w.currentIndexChanged.connect(lambda _: self.labelViewChanged.emit())
        self.note_text.textChanged.connect(lambda _: self.labelViewChanged.emit())
        return mine

    def _make_table(self) -> QtWidgets.QTableView:
        table = QtWidgets.QTableView(self)
        table.setModel(self.model)
        table.setSortingEnabled(True)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        # 24-px rows (22-px stamps): ten rows fit the default layout's bottom row (#23)
        table.verticalHeader().setDefaultSectionSize(ROW_PX)
        table.setIconSize(QtCore.QSize(ROW_PX - 2, ROW_PX - 2))
        table.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)   # a narrowed column keeps both ends
        table.horizontalHeader().setHighlightSections(False)
        table.horizontalHeader().setStretchLastSection(True)
        # size columns from the first rows only: Qt would otherwise ask for 1000 rows' text
        table.horizontalHeader().setResizeContentsPrecision(30)
        table.doubleClicked.connect(self._open)
        return table

    def _label_view_toggled(self, on: bool) -> None:
        for w in (self.score, self.user, self.note_text, self.in_gallery):
            w.setEnabled(on)
        self.counts.setVisible(on)
        self.labelViewChanged.emit()

    def label_filter(self) -> dict | None:
        """The My labels filter (None when the view is off)."""
        if not self.mine.isChecked():
            return None
        return {"score": self.score.currentData(), "user": self.user.currentData(),
                "note": self.note_text.text(), "disputed": self.disputed.isChecked()}

    def set_users(self, users: list[str]) -> None:
        current = self.user.currentData()
        self.user.blockSignals(True)
        self.user.clear()
        self.user.addItem("anyone", None)
        for u in users:
            self.user.addItem(u, u)
        self.user.setCurrentIndex(max(0, self.user.findData(current)))
        self.user.blockSignals(False)

    def set_label_view(self, mask: np.ndarray | None, counts: dict[int, int] | None) -> None:
        """Keep only ``mask`` rows (None: all), and show the counts per score."""
        self.model.layoutAboutToBeChanged.emit()
        self.model.mask = mask
        self.model._apply()
        self.model.layoutChanged.emit()
        self.counts.setText("  ".join(f"{s}: {n:,}" for s, n in counts.items()) if counts else "")
        self.count.setText(f"{self.model.rowCount():,} of {self.model.n_objects:,}")

    def _open(self, index: QtCore.QModelIndex) -> None:
        i = index.data(INDEX_ROLE)
        if i is not None:
            self.opened.emit(int(i))

    def set_table(self, columns: dict[str, np.ndarray], order: np.ndarray, range_columns: list[str]) -> None:
        """Show objects in ranked ``order`` with per-object ``columns``; ``range_columns`` are
        offered for the range filter."""
        current = self.column.currentText()
        self.column.blockSignals(True)
        self.column.clear()
        self.column.addItems(range_columns)
        if current in range_columns:
            self.column.setCurrentText(current)
        self.column.blockSignals(False)
        header = self.table.horizontalHeader()
        sort_col, sort_order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        old = self.model.column_names
        self.model.set_table(columns, order)
        self.apply_filter()
        if old and 0 <= sort_col < len(old) and old[sort_col] in columns:
            self.table.sortByColumn(list(columns).index(old[sort_col]), sort_order)
        else:
            # the table arrives ranked: show it in rank order without a sort indicator
            header.setSortIndicator(-1, QtCore.Qt.SortOrder.AscendingOrder)
            self.model.clear_sort()
        if list(columns) != old:   # new columns: size them; a refit keeps the user's widths
            self.table.resizeColumnsToContents()

    def clear(self) -> None:
        """Show nothing (the store is about to close: on-disk columns must not be read after)."""
        self._timer.stop()
        self.model.set_table({}, np.empty(0, np.int64))
        self.count.setText("")

    def update_table(self, columns: dict[str, np.ndarray], order: np.ndarray, range_columns: list[str]) -> None:
        """New values and ranking (after a score): the sort, filter and scroll position stay."""
        if list(columns) != self.model.column_names:
            self.set_table(columns, order, range_columns)
        else:
            self.model.update_table(columns, order)
            self.count.setText(f"{self.model.rowCount():,} of {self.model.n_objects:,}")

    def apply_filter(self) -> None:
        lo, hi = _number(self.lo.text(), -math.inf), _number(self.hi.text(), math.inf)
        self.model.only = {"disputed"} if self.disputed.isChecked() else set()
        self.model.set_filter(lo, hi, self.text.text(), self.column.currentText())
        self.count.setText(f"{self.model.rowCount():,} of {self.model.n_objects:,}")
        self.count.setStyleSheet(f"color: {theme.TEXT_DIM}")
