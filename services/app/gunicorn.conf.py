"""gunicorn's settings and hooks: every setting from its declaration in labsettings.py
(``gunicorn=``), every hook from gunicornhooks.py (read there)."""

import sys
from pathlib import Path

# The lab's modules sit beside this file (and beside it in the image's /app).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import gunicornhooks

gunicornhooks.apply_scenario_env()
gunicornhooks.raise_open_files_limit()
globals().update(gunicornhooks.read_settings())
errorlog = "-"
# gunicorn 27's control socket lives in ~/.gunicorn and is shared by every instance of a user.
control_socket_disable = True

_lifecycle = gunicornhooks.Lifecycle.from_env()
on_starting = _lifecycle.on_starting
child_exit = _lifecycle.child_exit
on_exit = _lifecycle.on_exit
post_fork = _lifecycle.post_fork
post_worker_init = _lifecycle.post_worker_init
