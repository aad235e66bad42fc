"""Peer policies: what a user would write or pick instead of ldbulk, against the same sandbox.

Every peer takes the sandbox URL, the token and the (project, environment) pairs, creates one
Redis integration per pair, and returns a :class:`~bench.peers.common.PeerResult`.
"""
