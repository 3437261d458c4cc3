"""The lessonlab desktop app (PySide6): thin Qt models and widgets over lessonlab.core."""
