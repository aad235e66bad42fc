"""What an application's own tests need to run ldbulk without LaunchDarkly.

Two ways, both real clients end to end:

- :class:`MemoryTransport`: hand it to ``Client(transport=...)`` and answer requests in
  memory, canned (:meth:`MemoryTransport.add`, :func:`canned`) or by a handler; every request
  is recorded as a :class:`SentRequest`. Fast and exact, for unit tests.
- The sandbox, a LaunchDarkly-like server on a loopback port (``python -m ldbulk.sandbox``,
  or :mod:`ldbulk.sandbox` in-process): rate limits with fixed windows, 409s, masked secrets
  and faults, for tests of the whole path over HTTP.

Not part of the API a service uses in production; kept stable for tests all the same.
"""

from ldbulk.api.sansio import RawResponse
from ldbulk.http.transport import MemoryTransport, SentRequest, canned

__all__ = ["MemoryTransport", "RawResponse", "SentRequest", "canned"]
