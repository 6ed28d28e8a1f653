"""What the customer bot says, in Chinese and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "greeting": {
        "en": "Hello{name}! Thanks for reaching out. We have your message and a member of our team will reply soon.",
        "zh": "您好{name}！感谢您的联系。我们已收到您的消息，工作人员会尽快回复您。",
    },
    "hello": {"en": "Hello{name}! ", "zh": "您好{name}！"},
    "not_sure": {
        "en": "Sorry, I am not sure I understood. Could you say it another way? Or reply 1 to talk to a person.",
        "zh": "抱歉，我没有完全理解。能换个说法吗？或回复 1 转人工客服。",
    },
    "talk_to_person": {"en": "Talk to a person", "zh": "转人工"},
    "handoff": {
        "en": "I am passing you to a colleague, who can see our whole conversation. They will reply here soon. "
              "(Reply \"bot\" to come back to me.)",
        "zh": "已为您转接人工客服，同事能看到我们的全部对话，会尽快在这里回复您。（回复“机器人”可回到自助服务。）",
    },
    "person_coming": {
        "en": "A colleague will reply here soon; they can see this whole conversation.",
        "zh": "人工客服会尽快在这里回复您，同事能看到这段对话的全部内容。",
    },
    "bot_back": {
        "en": "I am back. Ask me anything; your colleague still sees this conversation.",
        "zh": "我回来了，请问有什么可以帮您？同事仍能看到本次对话。",
    },
    "form_intro": {
        "en": "I can have a sales colleague get back to you with the details. A few quick questions first.",
        "zh": "我可以请销售同事为您详细解答。先简单了解几个问题。",
    },
    "form_resume": {
        "en": "Welcome back! Let's carry on where we left off.",
        "zh": "欢迎回来！我们接着上次的内容继续。",
    },
    "form_left": {
        "en": "No problem, I have stopped. Write \"quote\" whenever you want to carry on.",
        "zh": "好的，已暂停。需要时回复“报价”即可继续。",
    },
    "form_done": {
        "en": "Thank you{name}! A sales colleague will contact you soon. Here is what I noted:\n{summary}",
        "zh": "谢谢{name}！销售同事会尽快与您联系。我记录的信息如下：\n{summary}",
    },
    "form_updated": {"en": "Updated: {field} is now {value}.", "zh": "已更新：{field}改为 {value}。"},
    "form_still_need": {"en": "Still one thing: {question}", "zh": "还有一个问题：{question}"},
    "ask_name": {"en": "May I have your name?", "zh": "请问怎么称呼您？"},
    "ask_company": {"en": "Which company are you with?", "zh": "请问您的公司名称是？"},
    "ask_contact": {"en": "What phone number or email can we reach you at?", "zh": "请留下您的手机号或邮箱，方便我们联系您。"},
    "ask_need": {"en": "What do you need, in a sentence?", "zh": "请简单描述一下您的需求。"},
    "ask_budget": {"en": "Roughly what budget do you have in mind? (\"not sure\" is fine)",
                   "zh": "您的大致预算是多少？（不确定也可以）"},
    "ask_timeframe": {"en": "When would you like to start? (e.g. this month, in 3 months)",
                      "zh": "您计划什么时候开始？（例如：本月、三个月内）"},
    "bad_name": {"en": "That does not look like a name.", "zh": "这似乎不是姓名。"},
    "bad_company": {"en": "I need the company's name.", "zh": "请告诉我公司名称。"},
    "bad_contact": {"en": "That does not look like a phone number or email (e.g. +86 138 0013 8000 or "
                           "name@company.com).",
                    "zh": "这似乎不是有效的手机号或邮箱（例如 13800138000 或 name@company.com）。"},
    "bad_need": {"en": "Could you tell me a little more?", "zh": "能再具体一点吗？"},
    "bad_budget": {"en": "Please give an amount (e.g. 50k, 20万) or say \"not sure\".",
                   "zh": "请给出一个金额（例如 5万、50k），或回复“不确定”。"},
    "bad_timeframe": {"en": "Please give a time (e.g. next month, Q3, in 6 weeks) or say \"not sure\".",
                      "zh": "请给出一个时间（例如：下个月、三季度、六周内），或回复“不确定”。"},
    "consent_question": {
        "en": "One last thing: may we send you news and offers here on {channel}? Reply YES or NO. "
              "You can stop them at any time by replying STOP.",
        "zh": "最后一个问题：我们可以通过{channel}向您发送产品资讯和优惠吗？请回复“是”或“否”。您随时可以回复“退订”停止接收。",
    },
    "consent_yes": {"en": "Yes", "zh": "是"},
    "consent_no": {"en": "No", "zh": "否"},
    "consent_declined": {"en": "Understood, we will not send you marketing messages.",
                         "zh": "好的，我们不会向您发送营销信息。"},
    "event_registered": {
        "en": "You are registered for {name}, {when}{where}. We will remind you before it starts.",
        "zh": "报名成功！{name}，时间：{when}{where}。活动开始前我们会提醒您。",
    },
    "event_already": {"en": "You are already registered for {name} ({when}).",
                      "zh": "您已报名{name}（{when}），无需重复报名。"},
    "event_choose": {"en": "Which event would you like to register for?", "zh": "请问您要报名哪个活动？"},
    "event_none": {"en": "There is no event open for registration right now.", "zh": "目前没有可以报名的活动。"},
    "event_full": {"en": "Sorry, {name} is full.", "zh": "抱歉，{name}名额已满。"},
    "event_status": {"en": "You are registered for:\n{list}", "zh": "您已报名：\n{list}"},
    "event_status_none": {"en": "You are not registered for any upcoming event.",
                          "zh": "您目前没有报名即将举行的活动。"},
    "event_cancelled": {"en": "Your registration for {name} is cancelled.", "zh": "已为您取消{name}的报名。"},
    "csat_thanks": {"en": "Thank you for your feedback!", "zh": "感谢您的评价！"},
    "csat_sorry": {"en": "Thank you, and sorry we fell short. A manager will look into it.",
                   "zh": "感谢您的反馈，很抱歉没能让您满意，主管会跟进处理。"},
}

FIELD_NAMES = {
    "name": {"en": "your name", "zh": "称呼"},
    "company": {"en": "company", "zh": "公司"},
    "contact": {"en": "phone or email", "zh": "联系方式"},
    "need": {"en": "need", "zh": "需求"},
    "budget": {"en": "budget", "zh": "预算"},
    "timeframe": {"en": "time frame", "zh": "时间"},
}

CHANNEL_NAMES = {
    "telegram": {"en": "Telegram", "zh": "Telegram"},
    "wechat": {"en": "WeChat", "zh": "微信公众号"},
    "wecom": {"en": "WeChat", "zh": "企业微信"},
    "dingtalk": {"en": "DingTalk", "zh": "钉钉"},
    "email": {"en": "email", "zh": "邮件"},
}


def say(key: str, lang: str, **params: object) -> str:
    text = TEXTS[key]["zh" if lang == "zh" else "en"]
    return text.format(**params) if params else text
