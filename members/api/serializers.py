from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from members.models import User

Tag = serializers.CharField(max_length=32, allow_blank=False)


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    nickname = serializers.CharField()


class ProfileOutput(UserOutput):
    interests = serializers.ListField(child=serializers.CharField(), source="interest_tags")


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    user = UserOutput()


class RegisterInput(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    nickname = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        candidate = User(username=attrs["username"], nickname=attrs.get("nickname", ""))
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class LoginInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class WechatLoginInput(serializers.Serializer):
    code = serializers.CharField(max_length=128)


class ProfileUpdateInput(serializers.Serializer):
    nickname = serializers.CharField(max_length=64, required=False, allow_blank=True)
    interests = serializers.ListField(child=Tag, required=False, max_length=30)
