"""Talking to LaunchDarkly: the client, its pacer, retries, and the scope of a run's requests."""
