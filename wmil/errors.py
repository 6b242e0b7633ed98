"""The errors a user can cause or fix, each with a message naming the key, file or endpoint.

``wmil`` prints any :class:`WmilError` as one line (exit code 2) instead of a traceback. Kept apart,
with no imports, so that the CLI can catch them without loading torch or the OpenAI client.
"""


class WmilError(Exception):
    """Base of every error the CLI reports as a message."""


class ConfigError(WmilError, ValueError):
    """A params value is missing, unknown, of the wrong type or out of range."""


class CheckpointError(WmilError, RuntimeError):
    """A checkpoint is missing, corrupt, or belongs to a different configuration."""


class LLMError(WmilError, RuntimeError):
    """The LLM parent cannot go on: a missing API key, an unreachable endpoint, a dead local
    server, an answer still invalid after its retries under ``on_invalid: error``."""


class MissingResult(WmilError, RuntimeError):
    """A result file is the failure record of the job that should have made it (``wmil.jobs``)."""

    def __init__(self, path, record: dict):
        self.path, self.record = path, record
        super().__init__(f"{path}: missing: job {record['job']!r} failed ({record['reason']}); see {record['log']}")
