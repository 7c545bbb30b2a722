"""The one base class of the errors our services raise."""

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    """A business rule refused the request.

    Subclasses set ``code`` (machine-readable, stable), ``message`` (a
    translatable sentence that tells the user what to do) and ``http_status``.
    The API's exception handler renders them as the contract's error shape.
    """

    code = "invalid"
    message = _("The request could not be completed.")
    http_status = 400

    def __init__(self, message=None, *, code=None, http_status=None, fields=None):
        self.message = message if message is not None else self.message
        self.code = code or self.code
        self.http_status = http_status or self.http_status
        self.fields = fields
        super().__init__(str(self.message))


class NotFound(ApplicationError):
    code = "not_found"
    message = _("Not found.")
    http_status = 404


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    message = _("You do not have permission to do this.")
    http_status = 403


class Conflict(ApplicationError):
    code = "conflict"
    message = _("The request conflicts with the current state. Reload and try again.")
    http_status = 409
