"""The REST API's shared parts (authentication, errors, lists, schema)."""

_API_PREFIX = "/api/"


def is_api_request(request) -> bool:
    """Whether ``request`` is for the API (its path within the site: ``path_info``, as URLs resolve)."""
    return request.path_info.startswith(_API_PREFIX)
