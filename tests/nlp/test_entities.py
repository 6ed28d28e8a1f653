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
        # A German mobile whose last eleven digits look like a Chinese one stays German.
        "+49 151 2345 6789": [("phone", "+4915123456789")],
        "chen@customer.example": [("email", "chen@customer.example")],
    }
    for text, keys in cases.items():
        assert stated_contact_keys(text) == keys, text


def test_mentions_numbers_and_non_phones_are_not_keys():
    for text in ("please cc wang@x.com on this thread", "order 20231234567890 shipped",
                 "price is 13800138000 yuan for the whole project?", "12345678901", ""):
        assert stated_contact_keys(text) == [], text


def test_an_answer_to_the_contact_question_is_theirs_whatever_words_surround_it():
    text = "the office on 13800138000 is open during the day"
    assert stated_contact_keys(text) == []
    assert stated_contact_keys(text, asked=True) == [("phone", "+8613800138000")]
    assert stated_contact_keys("no idea", asked=True) == []


def test_everything_a_customer_states():
    from nlp.entities import extract

    assert extract("我是华为的张伟，手机 138 0013 8000，微信号 zhangwei_88") == {
        "phones": ["+8613800138000"], "wechat_ids": ["zhangwei_88"], "name": "张伟", "company": "华为"}
    assert extract("预算大概 10万 元，希望 12月15日 前上线") == {
        "budget": {"amount": 100000.0, "currency": "CNY"}, "dates": ["12-15"]}
    assert extract("Hi, I am Anna Smith from Contoso Ltd, budget is $50k, deadline 2026-12-31") == {
        "name": "Anna Smith", "company": "Contoso Ltd", "budget": {"amount": 50000.0, "currency": "USD"},
        "dates": ["2026-12-31"]}
    assert extract("我叫李娜") == {"name": "李娜"}
    assert extract("我们是深圳云帆科技有限公司") == {"company": "深圳云帆科技有限公司"}
    assert extract("next week works, email Anna@Contoso.com") == {"emails": ["anna@contoso.com"],
                                                                 "dates": ["next week"]}
    assert extract("please cc wang@x.com")["emails"] == ["wang@x.com"]  # found, though not a key of the writer
    assert extract("你好") == {} and extract("") == {}


def test_phone_numbers_of_every_kind_customers_write_are_one_e164_key():
    from nlp.entities import stated_contact_keys

    cases = {
        "我的手机 138 0013 8000": "+8613800138000",       # mainland mobile, grouped
        "+86 138-0013-8000": "+8613800138000",
        "电话 0086 138 0013 8000": "+8613800138000",       # dialled out from the mainland
        "座机 (021) 5555-1234": "+862155551234",           # a Shanghai landline
        "my number is +852 9123 4567": "+85291234567",     # Hong Kong
        "手机 +886 912 345 678": "+886912345678",          # Taiwan
        "call me on +1 415 555 0134": "+14155550134",
        "+44 20 7946 0958": "+442079460958",
    }
    for text, number in cases.items():
        assert stated_contact_keys(text) == [("phone", number)], text
    for text in ("订单号 20231204123456", "my phone 12345", "价格 138000 元"):
        assert stated_contact_keys(text) == [], text
