from django.urls import path

from hpbench.catalog import api

urlpatterns = [
    path("datasets/", api.DatasetList.as_view(), name="api-datasets"),
    path("queries/<int:query_id>/results", api.QueryResults.as_view(), name="api-query-results"),
    path("runs/<int:pk>/", api.RunDetail.as_view(), name="api-run"),
]
