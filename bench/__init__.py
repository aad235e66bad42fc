"""Benchmarks of ldbulk against the rate-limit bound and against its peers.

Run ``python -m bench`` for the full set (a few minutes) or ``python -m bench --smoke`` for a
tiny version of every scenario. Each measured client runs in its own subprocess against a
sandbox that runs in yet another process, so CPU time and peak RSS belong to the client alone.
"""
