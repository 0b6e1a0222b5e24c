"""Pages for catalog."""

urlpatterns: list = []
