"""Glue between intake and the classifier: labels for a new request, never an exception."""

from __future__ import annotations

import logging

from mailservice.inforequests.labels import Labels

log = logging.getLogger(__name__)


def labels_for(subject: str, body: str) -> Labels:
    """Classify a message; a classifier failure yields default labels marked for review, never a lost message."""
    from mailservice.classify.engine import default_classifier

    try:
        result = default_classifier().classify(subject, body)
    except Exception as exc:  # a classifier bug must not stop intake; staff see the request in "needs review"
        log.exception("classifier failed")
        return Labels(needs_review=True, version="error", details={"error": f"{type(exc).__name__}: {exc}"})
    return Labels(
        type=result.type.label,
        topic=result.topic.label,
        urgency=result.urgency.label,
        appeal_kind=result.appeal_kind,
        needs_review=result.needs_review,
        version=result.version,
        details=result.as_dict(),
    )
