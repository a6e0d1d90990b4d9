"""`scripts/lab bench`: the stack measured against its limits, each figure beside its reference
in one run (see docs/BENCHMARKS.md). Sections: loop, proxy, upload, ws, socketio, workers."""
