"""A member's own addresses: the caller's only, exactly one default while any exist."""

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from members.models import Address
from members.services.addresses import MAX_ADDRESSES, address_create
from tests.conftest import client_for
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/me/addresses/"


def address_body(**overrides) -> dict:
    body = {
        "name": "张三",
        "phone": "13800138000",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "detail": "文三路 1 号",
    }
    return body | overrides


def defaults(user) -> list[int]:
    return list(Address.objects.filter(user=user, is_default=True).values_list("pk", flat=True))


def test_the_first_address_is_the_default_and_a_new_default_moves_it():
    user = UserFactory()
    client = client_for(user)
    first = client.post(URL, address_body(), format="json")
    second = client.post(URL, address_body(name="李四"), format="json")
    assert first.status_code == 201 and first.json()["is_default"] is True
    assert second.json()["is_default"] is False

    third = client.post(URL, address_body(name="王五", is_default=True), format="json").json()

    assert defaults(user) == [third["id"]]
    listed = client.get(URL).json()["results"]
    assert listed[0]["id"] == third["id"] and len(listed) == 3


def test_patch_moves_the_default_and_changes_fields():
    user = UserFactory()
    client = client_for(user)
    first = client.post(URL, address_body(), format="json").json()
    second = client.post(URL, address_body(), format="json").json()

    response = client.patch(f"{URL}{second['id']}/", {"is_default": True, "detail": "新地址"}, format="json")

    assert response.status_code == 200 and response.json()["detail"] == "新地址"
    assert defaults(user) == [second["id"]] and Address.objects.get(pk=first["id"]).detail == "文三路 1 号"


def test_deleting_the_default_makes_the_newest_left_the_default():
    user = UserFactory()
    client = client_for(user)
    first = client.post(URL, address_body(), format="json").json()
    second = client.post(URL, address_body(), format="json").json()

    assert client.delete(f"{URL}{first['id']}/").status_code == 204

    assert defaults(user) == [second["id"]]
    assert client.delete(f"{URL}{second['id']}/").status_code == 204
    assert not Address.objects.filter(user=user).exists()


def test_another_members_address_does_not_exist_for_the_caller():
    owner, other = UserFactory(), UserFactory()
    address = client_for(owner).post(URL, address_body(), format="json").json()
    client = client_for(other)

    assert client.patch(f"{URL}{address['id']}/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"{URL}{address['id']}/").status_code == 404
    assert client.get(URL).json()["results"] == []
    assert Address.objects.get(pk=address["id"]).name == "张三"


@pytest.mark.parametrize(
    "bad",
    [{"phone": "call me"}, {"phone": ""}, {"name": ""}, {"detail": "x" * 201}, {"province": None}],
)
def test_bad_addresses_are_refused(bad):
    user = UserFactory()
    response = client_for(user).post(URL, address_body(**bad), format="json")

    assert response.status_code == 400
    assert not Address.objects.filter(user=user).exists()


def test_addresses_need_a_login():
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401


def test_a_member_keeps_at_most_the_maximum():
    user = UserFactory()
    for _ in range(MAX_ADDRESSES):
        address_create(actor=user, user=user, **address_body())

    response = client_for(user).post(URL, address_body(), format="json")

    assert response.status_code == 409 and response.json()["error"]["code"] == "too_many_addresses"


def test_the_database_refuses_two_defaults():
    user = UserFactory()
    address_create(actor=user, user=user, **address_body())
    with pytest.raises(IntegrityError), transaction.atomic():
        Address.objects.create(user=user, is_default=True, **address_body())


@pytest.mark.django_db(transaction=True)
def test_two_new_defaults_at_once_leave_exactly_one():
    user = UserFactory()
    barrier = threading.Barrier(2)
    failures = []

    def add():
        try:
            barrier.wait()
            address_create(actor=user, user=user, is_default=True, **address_body())
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == [] and Address.objects.filter(user=user).count() == 2
    assert len(defaults(user)) == 1
