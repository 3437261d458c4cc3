"""Models: every call to an OpenAI-compatible endpoint (`llm_client`) and the embedded `local` model server.

Nothing here knows about runs or lessons; callers pass messages and an endpoint and get replies back.
"""
