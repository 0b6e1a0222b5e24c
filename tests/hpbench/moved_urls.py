"""A URL conf where the annotation API and images live elsewhere (tests/hpbench/test_handlers.py): the hot routes
follow it."""

from django.urls import include, path

from annotate.aliases import campaign_image

urlpatterns = [
    path("v2/labelling/", include("annotate.urls")),
    path("v2/pictures/<str:token>", campaign_image, name="campaign-image"),
]
