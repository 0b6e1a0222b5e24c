from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    name = "hpbench.leaderboard"
    label = "leaderboard"
    verbose_name = "Preference benchmarks, scores and submissions"
