"""Page routes: each feature's page module declares its own ``urlpatterns``."""

from frontend.views import annotate, catalog, exports, leaderboard, monitor, researchers

urlpatterns = [*catalog.urlpatterns, *annotate.urlpatterns, *leaderboard.urlpatterns, *exports.urlpatterns,
               *researchers.urlpatterns, *monitor.urlpatterns]
