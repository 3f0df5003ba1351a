"""Things users can reuse in their own tests.

- `hfmodels.testing.hub.LoopbackHub`: a Hub-compatible server on 127.0.0.1 (also `python -m hfmodels.testing.hub`);
- `hfmodels.testing.fixtures`: the `loopback_hub` pytest fixture and `client_env` for subprocesses;
- `free_port()`: a free TCP port on 127.0.0.1 (for an app, or a process group's rendezvous).
"""

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


__all__ = ["free_port"]
