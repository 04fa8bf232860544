"""Salesforce's error codes onto synchub's error tree: the per-record codes the issue names, and
whole-call failures by status and errorCode (the shapes are the REST API's, see errors.py)."""

from __future__ import annotations

import pytest

from connectors.salesforce.errors import call_error, record_error
from core.errors import ConfigError, PermanentError, RateLimited, RecordRejected, TransientError


@pytest.mark.parametrize(
    "code",
    ["DUPLICATE_VALUE", "REQUIRED_FIELD_MISSING", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "STRING_TOO_LONG"],
)
def test_refusals_of_one_record_are_permanent_and_keep_the_code_and_message(code):
    error = record_error([{"statusCode": code, "message": "Salesforce says no", "fields": ["LastName"]}])
    assert isinstance(error, RecordRejected) and not isinstance(error, TransientError)
    assert error.code == code and str(error) == "Salesforce says no (fields: LastName)"


@pytest.mark.parametrize("code", ["UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"])
def test_passing_trouble_with_one_record_is_transient(code):
    error = record_error([{"statusCode": code, "message": "try again", "fields": []}], retry_after=7)
    assert isinstance(error, TransientError) and not isinstance(error, RateLimited)
    assert error.retry_after == 7 and code in str(error)


def test_every_error_of_a_record_is_reported_and_the_first_decides():
    error = record_error(
        [
            {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]"},
            {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"},
        ]
    )
    assert isinstance(error, RecordRejected) and error.code == "REQUIRED_FIELD_MISSING"
    assert "unable to obtain exclusive access" in str(error)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (403, "REQUEST_LIMIT_EXCEEDED", RateLimited),
        (503, "SERVER_UNAVAILABLE", TransientError),
        (500, "UNKNOWN_EXCEPTION", TransientError),
        (401, "INVALID_SESSION_ID", ConfigError),
        (403, "INSUFFICIENT_ACCESS", ConfigError),
        (404, "NOT_FOUND", ConfigError),
        (400, "MALFORMED_QUERY", RecordRejected),
    ],
)
def test_whole_call_failures_by_status_and_error_code(status, code, kind):
    error = call_error(status, [{"errorCode": code, "message": "m"}], retry_after=None, pause=900)
    assert type(error) is kind and code in str(error)
    if kind is RateLimited:
        assert error.retry_after == 900  # no Retry-After from Salesforce: the configured pause


def test_a_whole_call_failure_without_a_salesforce_body_is_permanent_by_status():
    error = call_error(400, "<html>bad</html>", retry_after=None, pause=900)
    assert type(error) is PermanentError and "HTTP 400" in str(error)
