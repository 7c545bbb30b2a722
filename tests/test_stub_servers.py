"""The local Stripe and WeChat Pay servers take a burst of connections at once, as the real ones do.

With the standard library's listen backlog (5), the kernel dropped the SYNs of a burst beyond it and
each such client waited a second before trying again: the checkout benchmark's p99 spikes.
"""

import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.commerce.stripe_server import FakeStripe
from tests.wechat.wechatpay_server import WechatPayServer

BURST = 200
STUBS = [(FakeStripe, lambda stub: stub.base_url), (WechatPayServer, lambda stub: stub.url)]


@pytest.mark.parametrize(("make", "url"), STUBS, ids=["stripe", "wechatpay"])
def test_a_burst_of_connections_is_accepted_without_a_retry(make, url):
    stub = make()
    stub.start()
    try:
        started = time.monotonic()
        address = urlsplit(url(stub))
        connections = [
            socket.create_connection((address.hostname, address.port), timeout=5) for _ in range(BURST)
        ]
        elapsed = time.monotonic() - started
        for connection in connections:
            connection.close()
    finally:
        stub.stop()
    assert elapsed < 0.9, f"{BURST} connections took {elapsed:.2f} s: a dropped SYN waits 1 s"
