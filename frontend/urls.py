"""Page routes: each feature's page module declares its own ``urlpatterns``."""

from frontend.views import annotate, catalog, exports, leaderboard, monitor

urlpatterns = [*catalog.urlpatterns, *annotate.urlpatterns, *leaderboard.urlpatterns, *exports.urlpatterns]
urlpatterns += monitor.urlpatterns
