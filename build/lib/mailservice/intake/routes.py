"""Where intake hands over messages other domains serve; the service calls :func:`load_routes` at start-up.

Each domain adds one line to :func:`load_routes` (a type route for new messages the classifier labels, or a
reply route for answers to its own outbox messages).
"""

from __future__ import annotations

from mailservice.intake.pipeline import register_type_route


def load_routes() -> None:
    """Register every domain's intake routes (idempotent: registering again replaces the same handler)."""
    from mailservice.mailings.intake import handle_subscription_mail  # issue 4: subscribe/unsubscribe by e-mail

    register_type_route("subscription", handle_subscription_mail)
    from mailservice.history.intake import handle_history_request

    register_type_route("history_request", handle_history_request)
    from mailservice.workgroup.replies import register as register_workgroup_replies  # issue 8: wg_* replies

    register_workgroup_replies()
    from mailservice.processes.replies import register as register_process_replies  # issue 9: approval replies

    register_process_replies()
