"""Everything cairn prints: progress, tables, JSON."""
