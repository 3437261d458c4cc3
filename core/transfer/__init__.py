"""Import and export: Inspect AI logs and chat JSONL in; SFT, preference pairs, rollouts and lessons out."""
from lessonlab.core.transfer.errors import MalformedFile, TransferError
from lessonlab.core.transfer.exports import LESSON_FORMATS, ROLLOUT_FORMATS, RecordsExport, export_lessons, export_rollouts
from lessonlab.core.transfer.importer import FORMATS, FileImport, ImportOptions, ImportReport, detect_format, import_file, import_files
from lessonlab.core.transfer.selection import rollout_scores
from lessonlab.core.transfer.training import TrainingExport, export_dpo, export_sft

__all__ = ["FORMATS", "FileImport", "ImportOptions", "ImportReport", "MalformedFile", "TransferError",
           "detect_format", "import_file", "import_files", "TrainingExport", "export_sft", "export_dpo",
           "rollout_scores", "RecordsExport", "ROLLOUT_FORMATS", "LESSON_FORMATS", "export_rollouts", "export_lessons"]
