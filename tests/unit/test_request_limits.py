"""The body guards' pure parts: how deep JSON nests (without recursing), when a request has
arrived for a thread to take it."""
from __future__ import annotations

import json
import time

import pytest

from api.limits import json_depth_exceeds
from pageledger.server import request_is_gathered


@pytest.mark.parametrize("depth,deeper", [(1, False), (32, False), (33, True), (1000, True), (100_000, True)])
def test_nesting_is_measured_for_arrays_and_objects(depth, deeper):
    assert json_depth_exceeds(b"[" * depth + b"]" * depth, 32) is deeper
    assert json_depth_exceeds(b'{"a":' * depth + b"1" + b"}" * depth, 32) is deeper


def test_brackets_inside_strings_are_not_structure():
    assert not json_depth_exceeds(json.dumps({"x": "[" * 100 + '\\"{' * 50}).encode(), 32)


def test_a_wide_document_at_the_limit_is_not_too_deep():
    doc = {"jobs": [{"a": [1, 2, {"b": [3]}], "c": "]]]"} for _ in range(5000)]}
    assert not json_depth_exceeds(json.dumps(doc).encode(), 32)
    assert json_depth_exceeds(json.dumps({"jobs": [doc, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}).encode(), 32)


def test_malformed_json_is_left_to_the_parser():
    assert not json_depth_exceeds(b"[}" * 1000, 32)
    assert not json_depth_exceeds(b"]]]]" + b"[" * 10, 32)


def test_the_scan_stays_fast_on_hostile_megabytes():
    started = time.monotonic()
    for body in (b"[" * 4_000_000, b"[]" * 2_000_000, b"[}" * 2_000_000):
        json_depth_exceeds(body, 32)
    assert time.monotonic() - started < 5


def test_a_request_is_gathered_when_head_and_body_have_arrived():
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
    assert not request_is_gathered(head[:-2], 1024)
    assert not request_is_gathered(head + b"abcd", 1024)
    assert request_is_gathered(head + b"abcde", 1024)
    assert request_is_gathered(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1024)


def test_big_bodies_chunked_ones_and_expect_continue():
    assert request_is_gathered(b"POST /x HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 1024)  # streams in a thread
    assert request_is_gathered(b"POST /x HTTP/1.1\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n", 1024)
    chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    assert not request_is_gathered(chunked, 1024)
    assert request_is_gathered(chunked + b"0\r\n\r\n", 1024)
    assert request_is_gathered(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000, 1024)  # gunicorn refuses the head
