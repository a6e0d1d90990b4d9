"""`make reload` in compose mode: an edit under nginx/ (bind-mounted) applies without a rebuild or a
restart; a broken edit is refused with nginx's own message and the running config keeps serving."""

from __future__ import annotations

from support.probeserver import check_reload_applies_and_refuses


def test_edit_plus_reload_takes_effect_and_a_broken_edit_is_refused(lab, http, probe_file):
    check_reload_applies_and_refuses(lab, http, probe_file)
