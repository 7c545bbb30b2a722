from rest_framework import generics


class SelectorListApi(generics.ListAPIView):
    """A paginated list whose rows come from a selector: subclasses implement ``select()``.

    ``model`` tells the schema generator the row type without running the
    selector (which needs a real caller).
    """

    model = None

    def select(self):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.select()
