"""Things users can reuse in their own tests.

- `hfmodels.testing.hub.LoopbackHub`: a Hub-compatible server on 127.0.0.1 (also `python -m hfmodels.testing.hub`);
- `hfmodels.testing.fixtures`: the `loopback_hub` pytest fixture and `client_env` for subprocesses.
"""
