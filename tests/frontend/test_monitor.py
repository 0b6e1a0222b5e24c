"""The staff campaign monitoring page and the annotator preview (frontend/views/monitor.py)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from annotate import quality, selectors
from annotate.models import Annotator, Assignment, Campaign, Vote
from tests.browser.factory import SECRET_MODEL_NAMES
from tests.frontend.monitor_fixtures import voted_campaign

pytestmark = pytest.mark.django_db

URL = "/campaigns/monitored/monitor/"


def _figures(html: str) -> dict[str, str]:
    return {k: v.strip() for k, v in re.findall(r'data-figure="([a-z_]+)"[^>]*>([^<]*)<', html)}


def _rows(html: str) -> dict[str, dict[str, str]]:
    rows = {}
    for name, body in re.findall(r'<tr data-annotator="([^"]+)"[^>]*>(.*?)</tr>', html, re.S):
        cells = dict(re.findall(r'data-col="([a-z]+)">(.*?)</td>', body, re.S))
        rows[name] = {k: re.sub(r"<[^>]+>", "", v).strip() for k, v in cells.items()}
    return rows


@pytest.fixture
def voted(tmp_path):
    return voted_campaign(tmp_path)


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def test_the_page_shows_the_figures_the_database_holds(voted, staff_client):
    response = staff_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    shown = _figures(html)
    campaign = voted.built.campaign
    votes = Vote.objects.filter(comparison__campaign=campaign)
    # Counted independently of the page's selectors.
    assert int(shown["votes"]) == votes.count() == 14
    assert int(shown["annotators"]) == Annotator.objects.filter(campaign=campaign).count() == 4
    assert int(shown["complete_comparisons"]) == sum(
        1 for c in campaign.comparisons.all() if c.votes.count() >= campaign.votes_per_pair
    ) == 4
    assert shown["progress"] == "87%"  # (3 + 3 + 3 + 1 + 3 capped) / (5 comparisons x 3)
    assert shown["tie_share"] == f"{votes.filter(choice='tie').count() / votes.count():.3f}" == "0.071"
    assert int(shown["excluded_votes"]) == 0
    # Non-gold comparisons with 2+ votes: (a a b), (b b b), (a b tie). Agreeing pairs 1 + 3 + 0 of 9.
    assert shown["pairwise_agreement"] == f"{4 / 9:.3f}"
    # Coincidences: o_aa 1, o_bb 3, off-diagonal 5; n_a 3, n_b 5, n_tie 1, n 9: alpha = 1 - 8 * 5 / (81 - 35).
    assert shown["krippendorff_alpha"] == f"{1 - 8 * 5 / 46:.3f}" == "0.130"
    low, high = (float(x) for x in re.findall(r"-?\d\.\d+", shown["agreement_ci"]))
    assert 0.0 <= low <= 4 / 9 <= high <= 1.0
    rows = _rows(html)
    assert {r for r in rows} == {a.pseudonym for a in voted.annotators.values()}
    ann, bob, cyd, dee = (rows[voted.annotators[n].pseudonym] for n in ("ann", "bob", "cyd", "dee"))
    assert (ann["votes"], ann["gold"], ann["time"], ann["agreement"]) == ("4", "1.00 (1/1)", "4150 ms", "1.00")
    assert (bob["votes"], bob["gold"], bob["time"], bob["agreement"]) == ("4", "0.00 (0/1)", "4200 ms", "1.00")
    assert (cyd["votes"], cyd["gold"], cyd["agreement"]) == ("3", "1.00 (1/1)", "0.00")
    assert (dee["time"], dee["agreement"]) == ("300 ms", "1.00")
    assert "fast" in dee["flags"] and "fast" not in ann["flags"]
    assert "<script>" not in html and " style=" not in html  # the Content-Security-Policy allows neither


def test_votes_are_counted_per_ten_minutes_over_three_hours_with_empty_buckets_and_a_running_total(voted):
    unit, buckets = selectors.campaign_vote_buckets(campaign=voted.built.campaign)
    assert unit == "10 minutes" and len(buckets) == 19  # 09:00 ... 12:00
    voted_in = [(b.start.strftime("%H:%M"), b.votes, b.cumulative) for b in buckets if b.votes]
    assert voted_in == [("09:00", 2, 2), ("10:00", 3, 5), ("12:00", 9, 14)]
    assert [b.cumulative for b in buckets] == sorted(b.cumulative for b in buckets)


@pytest.mark.parametrize(
    ("spread", "unit", "bars"),
    [(dt.timedelta(minutes=30), "minute", 31), (dt.timedelta(hours=20), "hour", 21), (dt.timedelta(days=9), "day", 10)],
)
def test_the_bucket_follows_the_time_the_votes_span(voted, spread, unit, bars):
    votes = list(Vote.objects.filter(comparison__campaign=voted.built.campaign).order_by("pk"))
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    for i, vote in enumerate(votes):
        Vote.objects.filter(pk=vote.pk).update(created_at=start + spread * i / (len(votes) - 1))
    got_unit, buckets = selectors.campaign_vote_buckets(campaign=voted.built.campaign)
    assert (got_unit, len(buckets), buckets[-1].cumulative) == (unit, bars, len(votes))
    assert sum(b.votes for b in buckets) == len(votes)


def test_a_campaign_without_votes_has_no_bucket_and_the_chart_says_so(voted, staff_client):
    Vote.objects.all().delete()
    assert selectors.campaign_vote_buckets(campaign=voted.built.campaign) == ("hour", [])
    assert "No vote yet" in staff_client.get(URL).content.decode()


def test_the_chart_is_an_accessible_svg_with_one_bar_per_bucket(voted, staff_client):
    html = staff_client.get(URL).content.decode()
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'role="img"' in svg and "14 of 15 wanted" in svg
    assert svg.count("<rect") == 19


@pytest.mark.parametrize("who", ["anonymous", "researcher", "annotator"])
def test_only_staff_see_the_monitoring_and_preview_pages(voted, who, researcher, client):
    if who == "researcher":
        client.force_login(researcher)
        expected = 403
    elif who == "annotator":  # a crowd worker who entered the study: their cookie gives no staff rights
        entered = client.get("/annotate/monitored/?PROLIFIC_PID=60a1b2c3d4e5f60718293a4b&STUDY_ID=s1&SESSION_ID=x1")
        assert entered.status_code == 200 and Annotator.objects.count() == 5
        expected = 302
    else:
        expected = 302
    for url in (URL, "/campaigns/monitored/preview/"):
        response = client.get(url)
        assert response.status_code == expected, url
        if expected == 302:
            assert response["Location"].startswith("/accounts/login/")
    dee = voted.annotators["dee"]
    response = client.post(f"{URL}annotators/{dee.pk}/exclude")
    assert response.status_code == expected
    dee.refresh_from_db()
    assert not dee.flagged and dee.review == ""


def test_an_unknown_campaign_is_404_for_staff(staff_client):
    assert staff_client.get("/campaigns/nope/monitor/").status_code == 404


def test_excluding_an_annotator_flags_them_and_excludes_their_votes(voted, staff_client):
    dee = voted.annotators["dee"]
    response = staff_client.post(f"{URL}annotators/{dee.pk}/exclude")
    assert response.status_code == 302
    dee.refresh_from_db()
    assert dee.flagged and dee.review == "excluded" and dee.reviewed_at is not None
    assert set(Vote.objects.filter(annotator=dee).values_list("excluded", flat=True)) == {True}
    assert not Vote.objects.filter(excluded=True).exclude(annotator=dee).exists()
    shown = _figures(staff_client.get(URL).content.decode())
    assert shown["excluded_votes"] == "3" and shown["flagged_annotators"] == "1"
    # Without dee: (a a b), (b b), (a b): agreeing pairs 1 + 1 + 0 of 3 + 1 + 1.
    assert shown["pairwise_agreement"] == f"{2 / 5:.3f}"
    quality.quality_refresh(campaign=voted.built.campaign)  # the gold check keeps staff's decision
    dee.refresh_from_db()
    assert dee.flagged


def test_approving_keeps_an_annotator_the_gold_check_would_flag(voted, staff_client):
    campaign = voted.built.campaign
    Campaign.objects.filter(pk=campaign.pk).update(gold_min_votes=1, gold_min_accuracy=0.7)
    campaign.refresh_from_db()
    bob = voted.annotators["bob"]
    assert bob.pk in quality.quality_refresh(campaign=campaign)
    staff_client.post(f"{URL}annotators/{bob.pk}/approve")
    bob.refresh_from_db()
    assert not bob.flagged and bob.review == "approved"
    assert set(Vote.objects.filter(annotator=bob).values_list("excluded", flat=True)) == {False}
    assert bob.pk not in quality.quality_refresh(campaign=campaign)
    html = staff_client.get(URL).content.decode()
    assert "approved by staff" in _rows(html)[bob.pseudonym]["flags"]
    staff_client.post(f"{URL}annotators/{bob.pk}/reset")  # back to the gold check
    bob.refresh_from_db()
    assert bob.flagged and bob.review == ""


def test_actions_need_a_csrf_token_and_a_known_action(voted, staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    dee = voted.annotators["dee"]
    assert client.post(f"{URL}annotators/{dee.pk}/exclude").status_code == 403
    dee.refresh_from_db()
    assert not dee.flagged
    client = Client()
    client.force_login(staff_user)
    assert client.post(f"{URL}annotators/{dee.pk}/delete").status_code == 404
    assert client.get(f"{URL}annotators/{dee.pk}/exclude").status_code == 405


def test_an_annotator_of_another_campaign_cannot_be_reviewed_through_this_one(voted, staff_client):
    other = Campaign.objects.create(slug="other-study", name="other", dataset=voted.built.campaign.dataset)
    stranger = Annotator.objects.create(campaign=other, source=Annotator.Source.ACCOUNT)
    assert staff_client.post(f"{URL}annotators/{stranger.pk}/exclude").status_code == 404


def test_the_prolific_url_carries_prolifics_placeholders(voted, staff_client):
    html = staff_client.get(URL).content.decode()
    match = re.search(r'id="mon-prolific-url" readonly value="([^"]+)"', html)
    assert match
    assert match.group(1) == (
        "http://testserver/annotate/monitored/?PROLIFIC_PID={{%PROLIFIC_PID%}}&amp;STUDY_ID={{%STUDY_ID%}}"
        "&amp;SESSION_ID={{%SESSION_ID%}}"
    )
    assert 'href="/campaigns/monitored/preview/"' in html


def test_the_preview_shows_a_task_without_leasing_or_recording_anything(voted, staff_client):
    comparison = voted.built.comparisons[2]
    before = (Assignment.objects.count(), Vote.objects.count(), Annotator.objects.count())
    html = staff_client.get(f"/campaigns/monitored/preview/?comparison={comparison.pk}").content.decode()
    # The voting page itself renders it, from its config (frontend/annotate/page.html in preview mode).
    assert 'id="annotate-app"' in html and '"preview": {"lease": "preview"' in html
    assert f'"url": "/images/{comparison.reference_image_id}"' in html
    for image_id in comparison.set_a_images + comparison.set_b_images:
        assert f'"url": "/images/{image_id}"' in html
    assert comparison.text in html and "Nothing is leased or recorded" in html
    assert all(name not in html for name in SECRET_MODEL_NAMES)
    assert staff_client.get("/campaigns/monitored/preview/").status_code == 200  # a random one
    assert (Assignment.objects.count(), Vote.objects.count(), Annotator.objects.count()) == before
    assert staff_client.get("/campaigns/monitored/preview/?comparison=999999").status_code == 404
    assert staff_client.get("/campaigns/monitored/preview/?comparison=1e9").status_code == 404


def test_the_admin_links_each_campaign_to_its_monitoring_page(voted, staff_client):
    campaign = voted.built.campaign
    assert 'href="/campaigns/monitored/monitor/"' in staff_client.get("/admin/annotate/campaign/").content.decode()
    change = staff_client.get(f"/admin/annotate/campaign/{campaign.pk}/change/").content.decode()
    assert 'href="/campaigns/monitored/monitor/"' in change and "14 of 15 votes (87%)" in change
