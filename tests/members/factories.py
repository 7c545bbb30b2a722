import factory
from factory.django import DjangoModelFactory

from members.models import User

PASSWORD = "correct-horse-battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    nickname = factory.Faker("name", locale="zh_CN")
    password = factory.django.Password(PASSWORD)
