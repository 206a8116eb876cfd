"""The project's own exception types.

Every error meant for a user is an ``OctantError`` whose message is one sentence that says what
to do. ``main.py`` and ``ui/`` show the message; they never show a traceback for these.
This module sits in ``storage/`` because it is the bottom layer: every other layer may import it.
"""


class OctantError(Exception):
    """A problem the user can understand and act on."""


class BadImageError(OctantError):
    """A file could not be read as a fundus photograph (corrupt, truncated, not an image)."""


class GeometryError(OctantError):
    """Disc and fovea landmarks that cannot define the eight regions."""


class DatabaseError(OctantError):
    """The project database cannot be used as it is (newer schema, locked, broken)."""


class SchemaTooNewError(DatabaseError):
    """The database was written by a newer Octant."""


class DatabaseLockedError(DatabaseError):
    """Another program or workstation holds a lock for longer than the busy timeout; trying
    again later can succeed."""


class ConcurrentChangeError(DatabaseLockedError):
    """PostgreSQL gave up an action because another workstation changed the same data at the
    same moment (serialization failure or deadlock); nothing of it was saved, trying again can
    succeed."""


class DatabaseUnreachableError(DatabaseError):
    """The database server cannot be reached now (stopped, restarting, the network down); nothing
    of the action was saved, and trying again once it answers can succeed."""


class StaleAnswerError(OctantError):
    """An undo, redo or accepted suggestion found the stored answer changed since this workstation
    saved it (the same reader on another workstation): nothing was written."""


class AccessDeniedError(OctantError):
    """A reader asked for what blind reading forbids (another reader's labels)."""


class NotFoundError(OctantError):
    """A project, image, reader or finding that does not exist."""


class WeightsError(OctantError):
    """Model weights that are missing or cannot be read."""


class CancelledError(OctantError):
    """Long work stopped because the user cancelled it."""


class InvalidRequestError(OctantError):
    """A request that cannot be carried out as asked (project exists, name taken, too few readers)."""


def about_file(path: object, sentence: str) -> str:
    """``path: sentence`` for a list of problems, unless the sentence names the file already."""
    return sentence if str(path) in sentence else f"{path}: {sentence}"
