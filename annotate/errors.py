"""Errors of the annotation services: each carries the HTTP status and a message meant for the person."""

from __future__ import annotations


class AnnotateError(Exception):
    """Base class: ``status`` is the HTTP status the API answers with, ``detail`` the message shown."""

    status: int = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidVote(AnnotateError):
    status = 400


class NotYourLease(AnnotateError):
    status = 403


class NoAnnotator(AnnotateError):
    status = 403


class ConsentRequired(AnnotateError):
    """The campaign asks for consent and the annotator has not accepted it on the first screen."""

    status = 403


class LeaseNotFound(AnnotateError):
    status = 404


class CampaignNotFound(AnnotateError):
    status = 404


class AlreadyAnswered(AnnotateError):
    status = 409


class CampaignNotOpen(AnnotateError):
    status = 409


class NotLastAnswer(AnnotateError):
    """Only the annotator's latest answer can be changed, and only while its lease is live."""

    status = 409


class TooManyEntries(AnnotateError):
    """An entry rate limit was reached (annotate/crowd.py)."""

    status = 429


class LeaseExpired(AnnotateError):
    status = 410


class BuildError(Exception):
    """A campaign cannot be built as configured; the message names what is missing."""
