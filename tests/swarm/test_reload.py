"""`make reload` on the swarm stack: the nginx task's container mounts the checkout's nginx/ (one
node), so an edit applies without a redeploy; a broken edit is refused with nginx's own message
and the running config keeps serving."""

from __future__ import annotations

from support import probeserver


def test_edit_plus_reload_takes_effect_and_a_broken_edit_is_refused(lab, http):
    with probeserver.probe_file() as probe_file:
        probeserver.check_reload_applies_and_refuses(lab, http, probe_file)
