"""Contact details stated as one's own, in Chinese and English."""

from nlp.entities import stated_contact_keys


def test_stated_phones_and_emails_are_normalized_keys():
    cases = {
        "my phone is +86 138-0013-8000": [("phone", "+8613800138000")],
        "我的手机 138 0013 8000": [("phone", "+8613800138000")],
        "0086 13800138000": [("phone", "+8613800138000")],
        "邮箱：Chen@Customer.example，电话 13800138000": [("email", "chen@customer.example"),
                                                     ("phone", "+8613800138000")],
        "call me at +44 20 7946 0958": [("phone", "+442079460958")],
        "chen@customer.example": [("email", "chen@customer.example")],
    }
    for text, keys in cases.items():
        assert stated_contact_keys(text) == keys, text


def test_mentions_numbers_and_non_phones_are_not_keys():
    for text in ("please cc wang@x.com on this thread", "order 20231234567890 shipped",
                 "price is 13800138000 yuan for the whole project?", "12345678901", ""):
        assert stated_contact_keys(text) == [], text
