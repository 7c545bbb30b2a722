from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person: logs in to the mini-program (member) or the admin (owner, finance)."""

    nickname = models.CharField(_("nickname"), max_length=64, blank=True)
    wechat_openid = models.CharField(
        _("WeChat openid"), max_length=64, unique=True, null=True, blank=True, editable=False
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.nickname or self.username

    @property
    def interest_tags(self) -> list[str]:
        return [interest.tag for interest in self.interests.all()]


class UserInterest(models.Model):
    """A tag a user declares on their profile; the scorer counts them per community."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="interests", verbose_name=_("user"))
    tag = models.CharField(_("tag"), max_length=32)

    class Meta:
        verbose_name = _("interest")
        verbose_name_plural = _("interests")
        constraints = [models.UniqueConstraint(fields=["user", "tag"], name="uniq_user_interest")]
        indexes = [models.Index(fields=["tag"])]

    def __str__(self) -> str:
        return self.tag
