"""Routes of the annotation API, mounted at /api/annotate/."""

from django.urls import path

from annotate import api

app_name = "annotate"

urlpatterns = [
    # The annotators' hot path first: URL resolution tries the patterns in order.
    path("campaigns/<slug:slug>/next", api.NextTaskView.as_view(), name="next-task"),
    path("votes", api.VoteView.as_view(), name="vote"),
    path("votes/replace", api.VoteReplaceView.as_view(), name="vote-replace"),
    path("campaigns/", api.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<slug:slug>", api.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<slug:slug>/enter", api.CampaignEnterView.as_view(), name="campaign-enter"),
    path("campaigns/<slug:slug>/onboarded", api.OnboardedView.as_view(), name="campaign-onboarded"),
]
