"""The app's pages, in sidebar order: name, title and where the page class lives.

Importing this module imports no Qt, so `lessonlab gui --page` (cli/app.py) reads the same list as
the main window without loading PySide6. A new page is one module with a `Page` subclass plus one
line here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PageEntry:
    """One page: its name on the command line, its title in the sidebar and its class as "module:Class"."""

    name: str
    title: str
    factory: str

    def load(self) -> type:
        """The page class (imports its module, and so Qt)."""
        module_name, _, class_name = self.factory.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


PAGES: tuple[PageEntry, ...] = (
    PageEntry("runs", "Runs", "lessonlab.gui.runs_page:RunsPage"),
    PageEntry("compare", "Compare", "lessonlab.gui.compare_page:ComparePage"),
    PageEntry("review", "Review", "lessonlab.gui.review_page:ReviewPage"),
    PageEntry("lessons", "Lessons", "lessonlab.gui.lessons_page:LessonsPage"),
    PageEntry("impact", "Impact", "lessonlab.gui.impact_page:ImpactPage"),
)


def page_names() -> list[str]:
    """The pages' names, in sidebar order (what `--page` accepts)."""
    return [entry.name for entry in PAGES]


def find_page(name: str) -> PageEntry:
    """The page called name or titled name (case-insensitive); ValueError naming the pages if none is."""
    for entry in PAGES:
        if name.lower() in (entry.name, entry.title.lower()):
            return entry
    raise ValueError(f"unknown page {name!r} (pages: {', '.join(page_names())})")
