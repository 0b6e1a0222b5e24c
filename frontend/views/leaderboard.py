"""Pages for leaderboard."""

urlpatterns: list = []
