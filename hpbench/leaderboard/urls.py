"""``/api/leaderboard/``: benchmarks and their leaderboards (public), submissions (token or session auth)."""

from django.urls import path

from hpbench.leaderboard import api, scorefile_api

app_name = "leaderboard-api"

urlpatterns = [
    path("benchmarks", api.BenchmarkListApi.as_view(), name="benchmarks"),
    path("benchmarks/<slug:name>", api.LeaderboardApi.as_view(), name="leaderboard"),
    path("benchmarks/<slug:name>/csv", api.LeaderboardCsvApi.as_view(), name="leaderboard-csv"),
    path("requests/benchmarks/<slug:name>", scorefile_api.BenchmarkRequestApi.as_view(), name="benchmark-request"),
    path("requests/datasets/<slug:name>/<str:split>", scorefile_api.SplitRequestApi.as_view(), name="split-request"),
    path("requests/images/<slug:name>", scorefile_api.ImagesArchiveApi.as_view(), name="images-archive"),
    path("submissions", api.SubmissionListApi.as_view(), name="submissions"),
    path("submissions/<int:pk>", api.SubmissionDetailApi.as_view(), name="submission"),
    path("submissions/<int:pk>/scores", api.SubmissionScoresApi.as_view(), name="submission-scores"),
    path("submissions/<int:pk>/file", api.SubmissionFileApi.as_view(), name="submission-file"),
    path("submissions/<int:pk>/cancel", api.SubmissionCancelApi.as_view(), name="submission-cancel"),
    path("submissions/<int:pk>/publish", api.SubmissionPublishApi.as_view(), name="submission-publish"),
]
