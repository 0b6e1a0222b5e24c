"""Pages for annotate."""

urlpatterns: list = []
