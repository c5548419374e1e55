"""Where intake hands over messages other domains serve; the service calls :func:`load_routes` at start-up.

Each domain adds one line to :func:`load_routes` (a command route for a command by e-mail recognised in its
strict form, intake/commands.py, or a reply route for answers to its own outbox messages).
"""

from __future__ import annotations

from mailservice.intake.commands import Command
from mailservice.intake.pipeline import register_command_route, register_route, register_withdrawal


def load_routes() -> None:
    """Register every domain's intake routes (idempotent: registering again replaces the same handler)."""
    from mailservice.mailings.intake import (  # issue 4, strict since issue 13
        handle_subscribe,
        handle_unsubscribe,
        withdraw_beside_a_request,
    )

    register_command_route(Command.subscribe, handle_subscribe)
    register_command_route(Command.unsubscribe, handle_unsubscribe)
    register_withdrawal(withdraw_beside_a_request)  # a registered letter that also asks to unsubscribe
    from mailservice.history.intake import handle_history_proof, handle_history_request

    register_command_route(Command.history, handle_history_request)
    register_route("history_proof", handle_history_proof)  # issue 14: a reply proves the address
    from mailservice.workgroup.replies import register as register_workgroup_replies  # issue 8: wg_* replies

    register_workgroup_replies()
    from mailservice.processes.replies import register as register_process_replies  # issue 9: approval replies

    register_process_replies()
