"""Signals members sends so that other apps (trust) can react without members importing them."""

from django.dispatch import Signal

# Sent after a community's declared attributes were replaced. Argument: community_id.
community_attributes_changed = Signal()
# Sent after a user's interests were replaced. Argument: user_id.
user_interests_changed = Signal()
