"""What members announces to other apps (trust listens). Members imports none of its listeners.

Send with ``shequn_backend.events.send_on_commit(signal, sender=<model class>, ...)``
from the service that made the change, so listeners run only after it
committed and can never fail it. Arguments are ids and plain values, never
model instances.
"""

from django.dispatch import Signal

# A community's declared attributes or audience-relevant settings changed.
# Arguments: community_id.
community_changed = Signal()

# A user's declared interests were replaced. Arguments: user_id.
user_interests_changed = Signal()

# A membership's status moved: joined, approved, renewed into active, left, expired, banned.
# Arguments: membership_id, community_id, user_id, old_status (None when created), new_status, at (datetime).
membership_status_changed = Signal()
