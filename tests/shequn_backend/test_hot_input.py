"""HotInputSerializer: fields built once per thread, each instance validating on its own."""

import threading

from commerce.api.serializers import OrderInput


def test_each_instance_validates_its_own_data_with_the_fields_built_once_per_thread():
    good = OrderInput(data={"community": "c", "lines": [{"sku": 1, "quantity": 2}]})
    bad = OrderInput(data={"community": "c", "lines": [{"sku": 0, "quantity": 2}], "provider": "cash"})
    assert good.is_valid() and not bad.is_valid()
    assert good.validated_data == {"community": "c", "lines": [{"sku": 1, "quantity": 2}]}
    assert set(bad.errors) == {"lines", "provider"} and "sku" in bad.errors["lines"][0]
    again = OrderInput(data={"community": "c", "lines": [{"sku": 3, "quantity": 1}]})
    assert again.is_valid() and again.validated_data["lines"] == [{"sku": 3, "quantity": 1}]
    assert again.fields["lines"] is good.fields["lines"]  # built once: not copied per request
    assert again.fields["lines"].parent is again and again.fields["lines"].root is again


def test_threads_get_their_own_fields():
    here = OrderInput(data={}).fields["community"]
    seen = []
    thread = threading.Thread(target=lambda: seen.append(OrderInput(data={}).fields["community"]))
    thread.start()
    thread.join()
    assert seen and seen[0] is not here
