"""LaunchDarkly's API as values: models, the converter, sans-I/O decoding, rate-limit headers.

No I/O here; everything above builds on it.
"""
