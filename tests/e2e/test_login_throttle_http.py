"""Parallel wrong passwords over HTTP: the throttle's limit holds across the server's workers."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests


def test_sixteen_parallel_wrong_passwords_get_five_answers_and_the_rest_are_throttled(live_server):
    url = live_server.url + "/Authentication/Login"

    def guess(i: int) -> int:
        return requests.post(url, json={"login": "root", "password": f"guess-{i}"}, timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(guess, range(16)))
    assert sorted(codes) == [401] * 5 + [429] * 11, codes
