from django.urls import path

from hpbench.exports import api

urlpatterns = [
    path("jobs", api.JobListView.as_view(), name="exports-jobs"),
    path("jobs/<int:job_id>", api.JobDetailView.as_view(), name="exports-job"),
    path("download/<str:token>", api.download, name="exports-download"),
]
