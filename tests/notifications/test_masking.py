import pytest

from notifications.masking import mask_email, mask_phone, mask_recipient


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+34600123456", "+34******456"),
        ("+4915112345678", "+49********678"),
        ("+1 555 0100", "+15***100"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_phone_keeps_country_code_and_last_three_digits(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("maria@example.com", "m***@example.com"),
        ("a@b.es", "a***@b.es"),
        ("no-at-sign", "***"),
        ("", ""),
    ],
)
def test_email_keeps_first_character_and_domain(email, masked):
    assert mask_email(email) == masked


def test_by_channel():
    assert mask_recipient("EMAIL", "luis@example.com") == "l***@example.com"
    assert mask_recipient("SMS", "+34600123456").endswith("456")
    assert "600123" not in mask_recipient("WHATSAPP", "+34600123456")
