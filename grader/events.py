"""Signals of the grading pipeline, for the ways in above it (the LTI grade passback listens here),
so the pipeline never imports them."""
from __future__ import annotations

from django.dispatch import Signal

# Sent once a submission's verdict is stored (graded, regraded, or a choice answer graded at once), after
# the transaction that stored it commits. Arguments: submission_id, user_id, course_id, item_id.
attempt_graded = Signal()
