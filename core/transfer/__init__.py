"""Import and export: Inspect AI logs and chat JSONL in; SFT, preference pairs, rollouts and lessons out.

Import formats are registered readers (`readers.py`); the imports of the reader modules below register
them, chat JSONL first (the order in which files are sniffed).
"""
from lessonlab.core.transfer import chat_jsonl, inspect_log  # noqa: F401 - registers the import formats
from lessonlab.core.transfer.errors import MalformedFile, TransferError
from lessonlab.core.transfer.exports import LESSON_FORMATS, ROLLOUT_FORMATS, RecordsExport, export_lessons, export_rollouts
from lessonlab.core.transfer.importer import FileImport, ImportOptions, ImportReport, detect_format, import_file, import_files
from lessonlab.core.transfer.readers import ImportFormat, format_names, import_formats, register as register_format
from lessonlab.core.runs.queries import rollout_scores  # re-exported: it lives with the run queries so `show` needs no transfer
from lessonlab.core.transfer.training import TrainingExport, export_dpo, export_sft

__all__ = ["format_names", "import_formats", "ImportFormat", "register_format", "FileImport", "ImportOptions", "ImportReport", "MalformedFile", "TransferError",
           "detect_format", "import_file", "import_files", "TrainingExport", "export_sft", "export_dpo",
           "rollout_scores", "RecordsExport", "ROLLOUT_FORMATS", "LESSON_FORMATS", "export_rollouts", "export_lessons"]
