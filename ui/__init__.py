"""Qt (PySide6) user interface. Imports the engine; never imports torch at module level."""
