"""The one error type localcloud reports to its user.

Its message is a single line that names the problem (the resource, the construct, the file);
the CLI prints it without a traceback unless ``--debug`` is given.
"""


class LocalCloudError(Exception):
    """A problem the user can fix: a bad template, an unknown function, a port in use."""


class UnsupportedConstruct(LocalCloudError):
    """The template uses something localcloud cannot emulate; never skipped silently."""

    def __init__(self, resource: str, construct: str, hint: str = "") -> None:
        message = f"{resource}: localcloud cannot emulate {construct}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.resource = resource
        self.construct = construct
