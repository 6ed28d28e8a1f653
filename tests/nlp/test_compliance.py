"""Rep-side compliance wording, default and configured lists."""

from nlp.compliance import ComplianceCheck


def test_default_lists_in_chinese_and_english():
    check = ComplianceCheck()
    assert check("We can give you a 20% discount, guaranteed!") == [
        ("discount", "discount"), ("guarantee", "guarantee"), ("guarantee", "guaranteed")]
    assert check("保证三天到货，绝对没问题") == [("guarantee", "保证"), ("guarantee", "绝对")]
    assert check("全额退款没问题") == [("refund", "退款"), ("refund", "全额退")]
    assert check("Here is the manual, see page 4.") == []
    assert check("The delivery is unguaranteed by the carrier") == []  # not inside another word


def test_configured_lists_replace_the_defaults():
    check = ComplianceCheck({"competitor": ["Salesforce", "纷享销客"], "empty": [" "]})
    assert check("better than salesforce") == [("competitor", "Salesforce")]
    assert check("20% discount") == []
