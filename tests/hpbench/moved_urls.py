"""A URL conf where the annotation API lives elsewhere (tests/hpbench/test_handlers.py): the hot routes follow it."""

from django.urls import include, path

urlpatterns = [
    path("v2/labelling/", include("annotate.urls")),
]
