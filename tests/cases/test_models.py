"""The case status derivation rule (derive_case_status), one test per rule."""

import pytest

from cases.models import CaseStatus, derive_case_status

P, G, A, BK, B, N, C = "PENDING", "GROUPED", "ALLOCATED", "BOOKING", "BOOKED", "NOTIFIED", "CLOSED"
MR, F, X = "MANUAL_REVIEW", "FAILED", "CANCELLED"


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({}, CaseStatus.OPEN),  # no passengers yet
        ({P: 0}, CaseStatus.OPEN),
        ({P: 5}, CaseStatus.OPEN),  # nothing started
        ({P: 4, G: 1}, CaseStatus.IN_PROGRESS),  # any work under way
        ({A: 2, BK: 1}, CaseStatus.IN_PROGRESS),
        ({B: 3, P: 1}, CaseStatus.IN_PROGRESS),  # someone still waiting
        ({B: 2, N: 1}, CaseStatus.FULFILLED),  # everyone booked or notified
        ({B: 2, X: 3}, CaseStatus.FULFILLED),  # cancellations do not count
        ({C: 2, N: 1}, CaseStatus.FULFILLED),  # not every one closed yet
        ({B: 2, F: 1}, CaseStatus.PARTIALLY_FULFILLED),  # the rest failed
        ({N: 1, MR: 2, X: 1}, CaseStatus.PARTIALLY_FULFILLED),  # or wait for review
        ({F: 2, MR: 1}, CaseStatus.IN_PROGRESS),  # stuck, but nobody fulfilled
        ({C: 3}, CaseStatus.CLOSED),  # everyone closed
        ({C: 1, X: 2}, CaseStatus.CLOSED),
        ({X: 2}, CaseStatus.CLOSED),  # everyone cancelled
    ],
)
def test_derive_case_status(counts, expected):
    assert derive_case_status(counts) == expected
