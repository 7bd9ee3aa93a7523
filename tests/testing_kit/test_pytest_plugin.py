"""The pytest plugin, as a user meets it: a test file run by pytester with our fixtures.

The plugin is loaded through its ``pytest11`` entry point, as in a user's project: the
inner runs below have no conftest and import nothing from mailtransfer.testing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

USER_CODE = '''
import pytest

import mailtransfer
from mailtransfer import Mailer, RetryPolicy, StartTLS
from mailtransfer.errors import DeliveryUnknown, ServiceUnavailable


def send_welcome(url, to, **options):
    """The application code under test."""
    with Mailer(url, retry=RetryPolicy.none(), **options) as mailer:
        return mailer.send(sender="app@example.test", to=to, subject="Welcome", text="Hi!")
'''

USER_TESTS = (
    USER_CODE
    + """

def test_delivered(smtp_server):
    send_welcome(smtp_server.url, ["bob@example.test"])
    (message,) = smtp_server.messages
    assert message.rcpt_tos == ("bob@example.test",)
    assert message.parsed()["Subject"] == "Welcome"


def test_refused_recipient(smtp_server):
    smtp_server.faults.refuse_recipient("nobody@example.test", 550, "5.1.1 No such user")
    result = send_welcome(smtp_server.url, ["bob@example.test", "nobody@example.test"])
    assert list(result.refused) == ["nobody@example.test"]
    assert smtp_server.messages[0].rcpt_tos == ("bob@example.test",)


def test_421(smtp_server):
    smtp_server.faults.disconnect("MAIL", 421, "4.3.2 Shutting down")
    with pytest.raises(ServiceUnavailable):
        send_welcome(smtp_server.url, ["bob@example.test"])
    assert smtp_server.messages == []


def test_disconnect_after_data(smtp_server):
    smtp_server.faults.disconnect(".")
    with pytest.raises(DeliveryUnknown) as caught:
        send_welcome(smtp_server.url, ["bob@example.test"])
    assert caught.value.message_id is not None


@pytest.mark.smtp_server(starttls=True, auth={"alice": "s3cret"}, require_auth=True)
def test_tls_and_auth(smtp_server, smtp_certificates):
    tls = StartTLS(context=smtp_certificates.client_context)
    send_welcome(smtp_server.url, ["bob@example.test"], tls=tls,
                 username="alice", password="s3cret")
    (message,) = smtp_server.messages
    assert message.tls and message.auth_user == "alice"


def test_outbox_catches_mailtransfer_send(mail_outbox):
    mailtransfer.send(sender="app@example.test", to=["bob@example.test"], subject="Hi", text="x")
    (message,) = mail_outbox.outbox
    assert message.subject == "Hi"
    assert message.rcpt_tos == ("bob@example.test",)


def test_outbox_is_empty_again(mail_outbox):
    assert mail_outbox.outbox == []


def test_outbox_validates(mail_outbox):
    with pytest.raises(mailtransfer.errors.HeaderInjection):
        mail_outbox.send(sender="a@example.test", to=["b@example.test"], subject="x\\nBcc: e@x")
    assert mail_outbox.outbox == []
"""
)


def test_user_tests_pass_with_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers", "-W", "error")
    result.assert_outcomes(passed=8)


def test_failing_user_assertions_fail(pytester: pytest.Pytester) -> None:
    """The fixtures cannot make a wrong expectation pass."""
    pytester.makepyfile(
        test_wrong=USER_CODE
        + """
def test_expects_nothing_sent(smtp_server):
    send_welcome(smtp_server.url, ["bob@example.test"])
    assert smtp_server.messages == []


def test_expects_a_message_that_was_never_sent(mail_outbox):
    assert len(mail_outbox.outbox) == 1
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)


def test_contradictory_marker_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marker="""
import pytest

@pytest.mark.smtp_server(starttls=True, smtps=True)
def test_both(smtp_server):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*starttls=True or smtps=True, not both*"])


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_off="def test_x(mail_outbox):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:mailtransfer")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mail_outbox' not found*"])


def test_loading_the_plugin_imports_no_server_or_tls_library() -> None:
    code = textwrap.dedent(
        """
        import sys
        import mailtransfer.testing.pytest_plugin
        heavy = {"aiosmtpd", "trustme", "dkim", "pytester"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
