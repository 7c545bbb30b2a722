from django.utils.translation import gettext_lazy as _

from shequn_backend.errors import ApplicationError


class InvalidCredentials(ApplicationError):
    code = "invalid_credentials"
    message = _("Wrong username or password. Check them and try again.")
    http_status = 400


class WechatLoginFailed(ApplicationError):
    code = "wechat_login_failed"
    message = _("WeChat login failed. Open the mini-program again and retry.")
    http_status = 400


class WechatUnavailable(ApplicationError):
    code = "wechat_unavailable"
    message = _("WeChat login is unavailable right now. Try again in a minute.")
    http_status = 503


class UsernameTaken(ApplicationError):
    code = "validation_error"
    message = _("This username is taken. Choose another one.")
    http_status = 400

    def __init__(self):
        super().__init__(fields={"username": [str(self.message)]})
