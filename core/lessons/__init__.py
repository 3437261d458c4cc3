"""Lessons: the lessons database (versions, status events), the review of proposals and the snapshots.

`data` holds lessons as plain data and the reads over them; `curation` changes lessons and decides
proposals; `review` is the review queue shared by the CLI and the app; `snapshots` are the exact,
content-hashed system prompts rollouts were sent with. The names below are the package's public face,
so callers write `from lessonlab.core import lessons as L`.
"""
from lessonlab.core.lessons.data import *  # noqa: F401,F403
from lessonlab.core.lessons.curation import *  # noqa: F401,F403
