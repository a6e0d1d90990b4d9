# The settings of gunicorn's sample configuration (see expected.toml for the source), in its order;
# the comments, logging, process-naming and hook parts, which nginx never meets, left out.
bind = "127.0.0.1:8000"
backlog = 2048

workers = 1
worker_class = "sync"
worker_connections = 1000
timeout = 30
keepalive = 2
