from rest_framework import generics


class SelectorListApi(generics.ListAPIView):
    """A paginated list whose rows come from a selector: subclasses implement ``select()``.

    ``model`` tells the schema generator the row type without running the
    selector (which needs a real caller).
    """

    model = None

    def select(self):
        raise NotImplementedError

    def select_page(self, *, limit: int, offset: int) -> tuple[int, list[dict]] | None:
        """(the whole list's count, the page's bodies) read in one query, or None: the generic list
        answers. Lists with a fast path override it; their bodies must be the serializer's."""
        return None

    def list(self, request, *args, **kwargs):
        """The page from ``select_page`` when it gives one; ``page=last``, a refused page size or
        number and a page beyond the last go to the generic list (its 400 and 404)."""
        window = self.paginator.window(request)
        if window is not None:
            number, size = window
            page = self.select_page(limit=size, offset=(number - 1) * size)
            if page is not None and (page[1] or number == 1):
                count, results = page
                return self.paginator.window_response(
                    request, number=number, size=size, count=count, results=results
                )
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.select()
