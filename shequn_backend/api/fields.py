"""Serializer fields shared by every app's API."""

import datetime
import re
import threading
from decimal import Decimal
from functools import cached_property

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

# Moments our data can plausibly hold: anything else is a typo or an attack.
FIRST_YEAR, LAST_YEAR = 2000, 2099


class DateTimeField(serializers.DateTimeField):
    """ISO 8601 in and out, within the years 2000 to 2099.

    Before 1901 Asia/Shanghai's offset is local mean time (+08:05:43), which
    ISO 8601 cannot write and PostgreSQL may not take back: such moments are
    refused on input, and any already stored are rendered in UTC.
    """

    default_error_messages = {
        "out_of_range": _("Use a date between the years {first} and {last}."),
    }

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            self.fail("out_of_range", first=FIRST_YEAR, last=LAST_YEAR)
        return moment

    def enforce_timezone(self, value):
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            # DRF's own conversion overflows near years 1 and 9999: keep odd values out of it.
            if timezone.is_naive(value):
                self.fail("out_of_range", first=FIRST_YEAR, last=LAST_YEAR)
            return value.astimezone(datetime.UTC)
        value = super().enforce_timezone(value)
        offset = value.utcoffset()
        if offset is not None and offset.total_seconds() % 60:
            return value.astimezone(datetime.UTC)
        return value


# Money as the API renders it: digits, a point and two decimals ("99.00").
MONEY_OUTPUT_PATTERN = r"^-?\d+\.\d{2}$"


def money_pattern(max_value: Decimal, decimal_places: int = 2) -> str:
    """A regular expression for the money strings from 0 to ``max_value``: ``"12"``, ``"12.3"``, ``"12.30"``.

    ``max_value`` is either all nines with cents (``9999999.99``) or one digit followed by zeros
    (``50``, ``1000000``), so that the pattern says exactly what the field accepts.
    """
    cents = rf"(?:\.\d{{1,{decimal_places}}})?"
    whole = int(max_value)
    if max_value != whole or set(str(whole)) == {"9"}:
        return rf"^\d{{1,{len(str(whole))}}}{cents}$"
    text = str(whole)
    lead, zeros = int(text[0]), len(text) - 1
    if whole <= 0 or set(text[1:]) - {"0"}:
        raise ValueError(f"unsupported money maximum {max_value}")
    below = [rf"\d{{1,{zeros}}}"] if zeros else []
    if lead > 1:
        below.append(rf"[1-{lead - 1}]\d{{{zeros}}}" if zeros else rf"[0-{lead - 1}]")
    return rf"^(?:(?:{'|'.join(below)}){cents}|{text}(?:\.0{{1,{decimal_places}}})?)$"


class MoneyInput(serializers.DecimalField):
    """Money as the contract writes it: a string of digits with up to two decimals, from 0 to a maximum.

    Refuses JSON numbers (floats lose cents) and anything the schema's ``pattern`` refuses, so that
    the OpenAPI document and validation agree; renders ``"12.30"``.
    """

    default_error_messages = {
        "money_format": _('Enter an amount as a string such as "12.30", with at most two decimals.'),
    }

    def __init__(self, *, max_value=Decimal("9999999.99"), min_value=Decimal("0"), **kwargs):
        max_value = Decimal(str(max_value))
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("max_digits", len(str(int(max_value))) + kwargs["decimal_places"])
        super().__init__(max_value=max_value, min_value=Decimal(str(min_value)), **kwargs)
        self.pattern = money_pattern(max_value, self.decimal_places)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(self.pattern, data):
            self.fail("money_format")
        return super().to_internal_value(data)


class RefusedField(serializers.Field):
    """A read-only field of the resource that a write may not carry: sent at all, it is a 400.

    The schema documents it as a property no value satisfies (``not: {}``).
    """

    default_error_messages = {"read_only": _("This field is read-only and cannot be changed.")}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def validate_empty_values(self, data):
        if data is serializers.empty:
            return super().validate_empty_values(data)  # absent: skipped
        self.fail("read_only")

    def to_internal_value(self, data):
        self.fail("read_only")

    def to_representation(self, value):
        return value


class StrictCharField(serializers.CharField):
    """A string that must arrive as a JSON string: numbers and booleans are refused, not converted."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true`` or ``false`` only: ``"yes"``, ``1`` and ``"true"`` are refused, not converted."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class HotInputSerializer(serializers.Serializer):
    """An input serializer of a hot path (checkout): its fields are built once per thread and handed
    to each new instance, instead of deep-copied from the class for every request (DRF's way, a
    sixth of a refused checkout's CPU). Only for plain input fields, which keep no state between
    validations; a thread validates one request at a time.
    """

    _built = threading.local()

    @cached_property
    def fields(self) -> BindingDict:
        built = self._built.__dict__.get(type(self))
        if built is None:
            built = self._built.__dict__[type(self)] = super().fields
        fields = BindingDict(self)
        for name, field in built.items():
            field.parent = self  # bound (name, source) once; only the instance changes
            fields.fields[name] = field
        return fields
