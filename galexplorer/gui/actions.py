"""Every action of the explorer, in one table: menus, toolbar, shortcuts, panel buttons and the
``?`` help.

This module does not import Qt: the table can be read, tested and documented without a display
(``tests/test_docs.py`` imports it to check the user guide). ``keymap.py`` adds the Qt parts (key
sequences, the ``?`` dialog).

Each row says what the action is called, its keys, its menu, when it is enabled and what it
calls — a method of the controller (:class:`~.controller.Explorer`), or of the window for the
few that open a dialog or change the view. :mod:`.window_actions` builds the window's ``QAction``
objects and menus from :data:`SHORTCUTS`, and every panel button runs its row through
``window.run_action`` (and its enable check); the ``?`` dialog lists the rows with keys, and
``docs/user-guide.md`` is checked against them by the tests, so none of these can disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..label_scale import SCORES


@dataclass(frozen=True)
class Shortcut:
    """One action: its keys, where it appears, when it is enabled, what it calls.

    Attributes:
        action: the action's name (``window.act[name]``).
        keys: key sequences in Qt's portable text form ("Ctrl+Z", "Left", "?"); may be empty.
        text: menu text.
        description: what it does, for the help dialog and the user guide.
        group: the help dialog's section.
        menu: the menu it appears in, in table order ("" for none).
        handler: what it calls: ``handler(explorer)`` when ``on`` is "controller",
            ``handler(window)`` when ``on`` is "window".
        on: "controller" or "window".
        needs: enabled when: "always", "store" (a store is open), "object" (an object is in the
            inspector), "target" (a selection, or an object in the inspector), "gallery" (the
            gallery shows objects).
        icon: the icon's name (resources/icons), "" for none.
        separator: a separator goes before it in its menu.
        checkable: a tool that stays on (pan, lasso, rectangle): one of them is on at a time.
        toggle: a switch on its own, on or off (the image mosaic).
    """

    action: str
    keys: tuple[str, ...]
    text: str
    description: str
    group: str
    menu: str = ""
    handler: object = None
    on: str = "controller"
    needs: str = "store"
    icon: str = ""
    separator: bool = False
    checkable: bool = False
    toggle: bool = False


def _score(s: int, meaning: str) -> Shortcut:
    return Shortcut(f"score_{s}", (str(s),), f"Score {s}",
                    f"score {s}: {meaning} (saved at once; the next object follows)", "Labelling",
                    "Label", lambda ex, s=s: ex.score(s), needs="object")


def _score_shown(s: int) -> Shortcut:
    return Shortcut(f"gallery_score_{s}", (), f"Score all {s}",
                    f"give the gallery's picked objects (or all it shows) score {s}, as one undo step",
                    "Exploring", "", lambda w, s=s: w.explorer.score_many(w.gallery.targets(), s), on="window",
                    needs="gallery")


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open", ("Ctrl+O",), "Open store…", "open another store", "Files", "File",
             lambda w: w.dialogs.open_store(), on="window", needs="always", icon="open"),
    Shortcut("labeller", (), "Labeller…", "label as another person (the window reopens the store as them)",
             "Files", "File", lambda w: w.dialogs.switch_user(), on="window"),
    Shortcut("export", ("Ctrl+E",), "Export ranked list…",
             "write the ranked candidates as CSV or VOTable (as `galexplorer export`)", "Files", "File",
             lambda w: w.dialogs.export(), on="window", icon="export", separator=True),
    Shortcut("quit", ("Ctrl+Q",), "Quit", "close the explorer (everything is already saved)", "Files", "File",
             lambda w: w.close(), on="window", needs="always", separator=True),
    _score(0, "nothing of interest"),
    _score(1, "barely interesting"),
    _score(2, "a little interesting"),
    _score(3, "interesting"),
    _score(4, "very interesting"),
    _score(5, "exactly what I am looking for"),
    Shortcut("previous", ("Left",), "Previous object", "go back to the object shown before", "Labelling",
             "Label", lambda ex: ex.back(), separator=True),
    Shortcut("next", ("Right",), "Next object", "go to the next object without scoring this one", "Labelling",
             "Label", lambda ex: ex.forward()),
    Shortcut("queue_head", ("Space",), "Go to the queue",
             "show the head of the queue (the model's new batch after a refit)", "Labelling", "Label",
             lambda ex: ex.go_to_queue()),
    Shortcut("skip", ("S",), "Skip", "leave this object unscored and take it out of the queue", "Labelling",
             "Label", lambda ex: ex.skip(), needs="object"),
    Shortcut("note", ("N",), "Note…", "write a note about this object (kept with the labels)", "Labelling",
             "Label", lambda w: w.dialogs.write_note(), on="window", needs="object"),
    Shortcut("exclude", ("X",), "Exclude as artefact",
             "exclude the selection (or this object) from the ranking", "Labelling", "Label",
             lambda ex: ex.exclude_target(), needs="target"),
    Shortcut("undo", ("Ctrl+Z",), "Undo", "take back the last score, note or exclusion", "Labelling", "Label",
             lambda ex: ex.undo(), separator=True),
    Shortcut("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "record again what was undone", "Labelling", "Label",
             lambda ex: ex.redo()),
    Shortcut("pan", ("P",), "Pan", "back to pan and zoom with the mouse", "Exploring", "Select",
             lambda w: w.set_tool("pan"), on="window", icon="pan", checkable=True),
    Shortcut("lasso", ("L",), "Lasso", "draw a free-hand selection in the map (drag)", "Exploring", "Select",
             lambda w: w.set_tool("lasso"), on="window", icon="lasso", checkable=True),
    Shortcut("rectangle", ("R",), "Rectangle", "draw a rectangular selection in the map (drag)", "Exploring",
             "Select", lambda w: w.set_tool("rectangle"), on="window", icon="rectangle", checkable=True),
    Shortcut("clear_selection", ("Esc",), "Clear selection",
             "clear the selection (and stop drawing)", "Exploring", "Select", lambda w: w.escape(), on="window"),
    Shortcut("show_selection", ("G",), "Selection in gallery", "show the selected objects in the gallery",
             "Exploring", "Select", lambda ex: ex.show_selection()),
    Shortcut("similar", ("F",), "Find similar",
             "show the objects most similar to this one (or to the selection) in the gallery", "Exploring",
             "Select", lambda w: w.find_similar(), on="window", needs="target", icon="similar"),
    Shortcut("samp", (), "Send selection over SAMP",
             "send the selection (or this object) to TOPCAT, DS9 or Aladin", "Exploring", "Select",
             lambda w: w.samp.send(w.explorer.target()), on="window", needs="target"),
    Shortcut("samp_cutout", (), "Send cutout over SAMP",
             "send this object's cutout (FITS with its WCS) to DS9 or Aladin and pan them to it", "Exploring",
             "Select", lambda w: w.samp.send_cutout(), on="window", needs="object"),
    Shortcut("reset_view", ("Home",), "Reset view", "show the whole map", "Exploring", "View",
             lambda w: w.scatter.reset_view(), on="window", icon="home"),
    Shortcut("centre", ("C",), "Centre on object", "centre the map on the object in the inspector", "Exploring",
             "View", lambda w: w.centre_on_current(), on="window", needs="object"),
    Shortcut("stretch", ("T",), "Next stretch", "cycle the image stretch: linear, log, asinh, zscale",
             "Exploring", "View", lambda w: w.inspector.cycle_stretch(), on="window"),
    Shortcut("band", ("B",), "Next band", "cycle colour composite and single bands", "Exploring", "View",
             lambda w: w.inspector.cycle_band(), on="window"),
    Shortcut("larger", ("F11",), "Larger view", "show the inspector's image in a large window (or double-click it)",
             "Exploring", "View", lambda w: w.inspector.show_large(), on="window", needs="object"),
    Shortcut("mosaic", ("M",), "Image mosaic",
             "tile the map with thumbnails: one per cell, the object nearest the cell's centre (again: off)",
             "Exploring", "View", lambda w: w.toggle_mosaic(), on="window", toggle=True, separator=True),
    Shortcut("save_mosaic", (), "Save mosaic as PNG…", "write the mosaic in view as a PNG image, thumbnails "
             "at full resolution", "Exploring", "View", lambda w: w.dialogs.save_mosaic_as(), on="window"),
    Shortcut("reset_layout", (), "Reset layout", "put every panel back where it started", "Exploring", "View",
             lambda w: w.reset_layout(), on="window", separator=True),
    Shortcut("refit", ("Ctrl+R",), "Refit now", "refit the model on all labels now", "Model", "Model",
             lambda ex: ex.request_refit("manual"), icon="refit"),
    Shortcut("why", ("W",), "Why here",
             "why the object in the inspector ranks where it does: its score split into the anomaly prior and "
             "what the labels add, the labels that pull it most, its anomaly percentile and nearest labelled "
             "neighbour", "Model", "Model", lambda w: w.why.reveal(), on="window", needs="object"),
    Shortcut("random_start", (), "Random picks until the first find",
             "until your first score ≥ 3, draw a growing share of each batch at random (3 of 10 after the "
             "second batch without a find, then 7, then all): for data where the anomaly order misses your class",
             "Model", "Model", lambda w: w.toggle_cold_start(), on="window", needs="always", toggle=True),
    Shortcut("widen_view", (), "Widen the view after the first find",
             "after your first score ≥ 3, learn on the embedding's wide view (up to 32 principal components, "
             "each to unit variance, beside the morphology numbers) instead of the few that hold 95% of its "
             "variance: for a rare class that differs in shape more than in size or flux", "Model", "Model",
             lambda w: w.toggle_widen_view(), on="window", needs="always", toggle=True),
    Shortcut("refine", (), "Refine the representation…",
             "fine-tune the encoder on your labels and the unlabelled objects (galexplorer refine), then open "
             "the new store with the same objects and labels", "Model", "Model",
             lambda w: w.refinement.start(), on="window"),
    Shortcut("viewer", ("V",), "Open in sky viewer",
             "open the object's ra/dec in the external viewer (Legacy Surveys by default)", "Exploring",
             "Tools", lambda w: w.sky.open(), on="window", needs="object"),
    Shortcut("viewer_url", (), "Sky viewer URL…", "choose the sky viewer's URL template", "Exploring", "Tools",
             lambda w: w.sky.edit_url(), on="window", needs="always"),
    # the gallery's bulk buttons: on its picked objects, or all it shows; in no menu
    *(_score_shown(s) for s in SCORES),
    Shortcut("gallery_exclude", (), "Artefacts", "exclude the gallery's objects from the ranking", "Exploring", "",
             lambda w: w.explorer.exclude(w.gallery.targets()), on="window", needs="gallery"),
    Shortcut("gallery_include", (), "Include", "take the gallery's objects back into the ranking", "Exploring", "",
             lambda w: w.explorer.include(w.gallery.targets()), on="window", needs="gallery"),
    Shortcut("gallery_export", (), "Export…", "write the gallery's objects to CSV or VOTable", "Exploring", "",
             lambda w: w.dialogs.export(subset=w.gallery.targets()), on="window", needs="gallery"),
    Shortcut("gallery_samp", (), "SAMP", "send the gallery's objects to TOPCAT, DS9 or Aladin", "Exploring", "",
             lambda w: w.samp.send(w.gallery.targets()), on="window", needs="gallery"),
    Shortcut("help", ("?", "F1"), "Keyboard shortcuts", "show this list", "Help", "Help",
             lambda w: w.show_help(), on="window", needs="always"),
)

MENUS = ("File", "Label", "Select", "View", "Model", "Tools", "Help")
BY_ACTION = {s.action: s for s in SHORTCUTS}


GROUPS = ("Labelling", "Exploring", "Model", "Files", "Help")


def with_keys() -> list[Shortcut]:
    """The actions that have keys, by help section (the ``?`` dialog's and the guide's order)."""
    return sorted((s for s in SHORTCUTS if s.keys), key=lambda s: GROUPS.index(s.group))


def display_keys(shortcut: Shortcut) -> str:
    names = {"Left": "←", "Right": "→", "Esc": "Esc"}
    return " or ".join(names.get(k, k) for k in shortcut.keys)
