"""The SQLite label journal: scores, users, notes, undo/redo, consensus."""
