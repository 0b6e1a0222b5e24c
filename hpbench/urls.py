"""URL routes: health, admin, the JSON API under /api/, and the pages (frontend) under /."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotate.aliases import campaign_image
from hpbench.accounts.forms import LoginForm
from hpbench.catalog.api import image_file
from hpbench.health import healthz

# JSON answers under /api/ for errors raised outside the views (e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE).
handler400 = "hpbench.errors.bad_request"
handler404 = "hpbench.errors.page_not_found"
handler500 = "hpbench.errors.server_error"

ACCOUNT_URLS = [p for p in auth_urls.urlpatterns
                if settings.HPBENCH_PASSWORD_RESET or not (getattr(p, "name", "") or "").startswith("password_reset")]

urlpatterns = [
    path("api/annotate/", include("annotate.urls")),  # first: the busiest routes
    path("healthz", healthz, name="healthz"),
    path("images/<int:image_id>", image_file, name="image-file"),
    path("images/a/<str:token>", campaign_image, name="campaign-image"),  # annotators' opaque image URLs
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(authentication_form=LoginForm), name="login"),
    # Log in and out, change a password; resetting one by e-mail only where e-mail is set up (EMAIL_HOST).
    path("accounts/", include(ACCOUNT_URLS)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file: the Content-Security-Policy forbids inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", template_name="drf_spectacular/swagger_ui_csp.html"), name="api-docs"),
    path("api/", include("hpbench.catalog.urls")),
    path("api/leaderboard/", include("hpbench.leaderboard.urls")),
    path("api/exports/", include("hpbench.exports.urls")),
    path("", include("frontend.urls")),
]
