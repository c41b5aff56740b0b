"""Reading the logs scenario's k8s-file logs back, and what its payload wrote."""

import hashlib

import pytest

from bench.k8s_log import BadRecord, payload_digest, stream_digest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_and_partial_records_join_into_the_stream():
    records = [b"2024-01-01T00:00:00.1Z stdout P xx\n", b"2024-01-01T00:00:00.2Z stdout F x\n",
               b"2024-01-01T00:00:00.3Z stderr F oops\n", b"2024-01-01T00:00:00.4Z stdout F \n",
               b"2024-01-01T00:00:00.5Z stdout P tail\n"]
    assert stream_digest(records) == (sha(b"xxx\n\ntail"), 9)
    assert stream_digest(records, b"stderr") == (sha(b"oops\n"), 5)


def test_content_may_hold_spaces():
    assert stream_digest([b"t stdout F a b  c\n"]) == (sha(b"a b  c\n"), 7)


@pytest.mark.parametrize("record", [b"t stdout F no newline", b"t stdout X x\n", b"garbage\n"])
def test_a_record_that_is_not_one_is_refused(record):
    with pytest.raises(BadRecord):
        stream_digest([record])


@pytest.mark.parametrize("count", [0, 1, 4095, 4096, 4097, 10000])
def test_the_payloads_checksum(count):
    assert payload_digest(count, 7) == (sha(b"xxxxxx\n" * count), 7 * count)
