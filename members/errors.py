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


class WechatAlreadyBound(ApplicationError):
    code = "wechat_already_bound"
    message = _("This WeChat is already bound to another account. Log in with WeChat to use that account.")
    http_status = 409


class AccountHasOtherWechat(WechatAlreadyBound):
    message = _("Your account is already bound to another WeChat. Log in with that WeChat instead.")


class UsernameTaken(ApplicationError):
    code = "validation_error"
    message = _("This username is taken. Choose another one.")
    http_status = 400

    def __init__(self):
        super().__init__(fields={"username": [str(self.message)]})


class AlreadyMember(ApplicationError):
    code = "already_member"
    message = _("You are already a member of this community.")
    http_status = 409


class MembershipBanned(ApplicationError):
    code = "banned"
    message = _("You have been removed from this community and cannot join again. Contact its owner.")
    http_status = 403


class MembershipRequired(ApplicationError):
    code = "membership_required"
    message = _("Only active members can see this. Join the community first.")
    http_status = 403


class InvalidInviteCode(ApplicationError):
    code = "invalid_invite_code"
    message = _("This invite code is wrong, used up or expired. Ask the community for a new one.")
    http_status = 400


class InvalidReferralCode(ApplicationError):
    code = "invalid_referral_code"
    message = _("This referral code does not belong to an active member of this community.")
    http_status = 400


class SelfReferral(ApplicationError):
    code = "self_referral"
    message = _("You cannot use your own referral code.")
    http_status = 400


class ReferralCycle(ApplicationError):
    code = "referral_cycle"
    message = _("This referrer was brought in by you (directly or through others); choose another.")
    http_status = 400


class PlanRequired(ApplicationError):
    code = "plan_required"
    message = _("This community charges for entry: choose one of its active plans.")
    http_status = 400


class NotPendingApproval(ApplicationError):
    code = "not_pending_approval"
    message = _("Only memberships waiting for approval can be approved.")
    http_status = 409


class SlugTaken(ApplicationError):
    code = "validation_error"
    message = _("This address (slug) is taken. Choose another one.")
    http_status = 400

    def __init__(self):
        super().__init__(fields={"slug": [str(self.message)]})


class WrongPassword(ApplicationError):
    code = "validation_error"
    message = _("The current password is wrong. Enter the password you log in with.")
    http_status = 400

    def __init__(self):
        super().__init__(fields={"old_password": [str(self.message)]})


class WechatBusy(ApplicationError):
    code = "wechat_busy"
    message = _("WeChat is busy right now. Wait a moment and log in again.")
    http_status = 503


class WechatBadAnswer(ApplicationError):
    code = "wechat_bad_answer"
    message = _("WeChat sent an answer we cannot use. Try again later.")
    http_status = 502


class InvalidSettings(ApplicationError):
    """A service refused values (a plan's currency, a tier's discount, ...); ``fields`` says which."""

    code = "validation_error"
    message = _("Some values are not valid. Correct the marked fields.")
    http_status = 400


class StatusChangeRefused(ApplicationError):
    code = "status_change_refused"
    message = _(
        "This status change is not allowed: members join by themselves; owners approve, ban, unban or remove."
    )
    http_status = 409


class RoleChangeRefused(ApplicationError):
    code = "role_change_refused"
    message = _("The owner's role follows the community's owner and cannot be given or taken here.")
    http_status = 409


class InvalidTier(ApplicationError):
    code = "validation_error"
    message = _("Choose a tier of this membership's community.")
    http_status = 400


class WechatPhoneCodeInvalid(ApplicationError):
    code = "wechat_phone_code_invalid"
    message = _("WeChat did not accept this phone code (it is used once and lives 5 minutes). Ask again.")
    http_status = 400


class CommissionRateCeilingExceeded(ApplicationError):
    """Both commission levels together above ``COMMISSION_RATE_CEILING``."""

    code = "commission_rate_ceiling"
    http_status = 400

    def __init__(self, *, ceiling):
        message = _(
            "Level 1 and level 2 commission together may be at most %(ceiling)s percent of an order. "
            "Lower one of them."
        ) % {"ceiling": f"{ceiling.normalize():f}"}
        both = [str(message)]
        super().__init__(message, fields={"referral.level1_percent": both, "referral.level2_percent": both})
