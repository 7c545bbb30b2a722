"""Serializer fields shared by every app's API."""

import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

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
