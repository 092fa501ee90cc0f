"""The SQLite label journal: scores, users, notes, exclusions, undo/redo, consensus."""

from .journal import Consensus, Event, LabelJournal, check_score, default_user, journal_path

__all__ = ["Consensus", "Event", "LabelJournal", "check_score", "default_user", "journal_path"]
