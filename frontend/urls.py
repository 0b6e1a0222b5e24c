"""Page routes: each feature's page module declares its own ``urlpatterns``."""

from frontend.views import annotate, campaign_setup, catalog, exports, leaderboard, monitor, researchers

urlpatterns = [*catalog.urlpatterns, *annotate.urlpatterns, *leaderboard.urlpatterns, *exports.urlpatterns,
               *researchers.urlpatterns, *monitor.urlpatterns, *campaign_setup.urlpatterns]
