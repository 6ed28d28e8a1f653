"""Writes `data/chat_zh.tsv` and `data/chat_en.tsv`: customer chat lines composed by this project from the
patterns below, each labelled by the pattern it comes from (see data/README.md).

Run `python -m nlp.sentiment.chat_patterns` after changing a pattern; the output is the same on
every machine (a fixed seed), and both files are committed. The held-out `eval_*.tsv` files are
written by hand, separately, and never generated from these patterns.
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).parent / "data"
PER_PATTERN = 12  # fillings of each pattern with slots

ZH_SLOTS = {
    "P": ["耳机", "充电宝", "打印机", "会员", "软件", "路由器", "扫地机", "手表", "键盘", "这款", "套餐", "课程",
          "床垫", "咖啡机", "显示器", "系统", "APP", "空调", "净水器", "摄像头"],
    "CITY": ["新疆", "北京", "上海", "广州", "深圳", "成都", "西藏", "海南", "香港", "杭州", "武汉", "哈尔滨"],
    "N": ["两", "三", "五", "七", "十", "半个月", "好几"],
    "T": ["明天", "下周一", "周五下午", "今天晚上", "后天上午", "月底"],
    "CO": ["顺丰", "中通", "京东", "圆通", "EMS"],
    "COLOR": ["黑色", "白色", "蓝色", "灰色", "粉色"],
    "E_NEG": ["😡", "😤", "🙄", "💢", "😞", ""],
    "E_POS": ["👍", "😊", "❤️", "🎉", "😄", ""],
    "PERSON": ["客服", "小哥", "师傅", "销售", "你们", "售后"],
}

ZH = {
    "neutral": [
        # questions, including ones with words reviews use for complaints
        "{P}坏了的话可以保修吗", "退货的话运费谁出", "如果{P}不合适能退吗", "{P}能便宜点吗", "能不能便宜点",
        "快递到{CITY}要多久", "发{CITY}包邮吗", "{P}说明书有中文的吗", "{P}有{COLOR}的吗", "{P}多少钱",
        "{P}怎么卖", "请问{P}还有货吗", "{P}什么时候到货", "用{CO}还是{CO}发", "{T}能送到吗", "{T}可以安装吗",
        "订单什么时候发货", "帮我查一下物流", "我的快递到哪了", "能不能加急发", "可以开发票吗", "发票怎么开",
        "可以开专票吗", "批量买有折扣吗", "{N}台有优惠吗", "有没有试用", "能演示一下吗", "保修多久",
        "{P}和上一代有什么区别", "{P}支持{CITY}的电压吗", "怎么联系售后", "售后电话多少", "有门店吗",
        "在{CITY}有门店吗", "营业时间是几点", "周末有人吗", "晚上有人回复吗", "怎么付款", "支持花呗吗",
        "可以货到付款吗", "要预约吗", "地址写错了能改吗", "订单能取消吗", "拍错了能改吗", "密码忘了怎么办",
        "收不到验证码怎么办", "账号登不上怎么办", "{P}怎么设置", "{P}怎么连接手机", "退款多久到账",
        "换货流程是什么", "破损了怎么理赔", "会员怎么续费", "怎么升级套餐", "价格含税吗", "报价单发我邮箱",
        "把合同发我看看", "我们大概{N}十个人用", "预算{N}万左右", "三个月内决定", "预算还没定", "我再考虑一下",
        "稍等我问下领导", "回头再聊", "好的", "好", "嗯", "嗯嗯", "收到", "知道了", "明白", "行", "可以", "是的",
        "不是", "没有", "对", "你好", "您好", "在吗", "在不在", "哈喽", "hello", "有人吗", "请问", "我想咨询一下",
        "想了解一下{P}", "我是上次联系的张先生", "我姓李", "我叫王伟", "公司叫星河科技", "13800138000",
        "我的手机是13912345678", "邮箱 li@example.com", "{T}三点", "{T}有空", "1", "2", "3", "/start", "/help",
        "转人工", "人工", "机器人", "查订单", "在线等", "？", "。。。", "啊", "哦", "好的谢谢", "ok", "OK的",
        "你们{P}怎么样", "{P}耐用吗", "{P}会不会坏", "坏了怎么办", "丢了能补吗", "会不会掉色", "是正品吗",
        "和实体店一样吗", "退订规则是什么", "能开收据吗", "我要下单", "帮我下单{N}个", "给我发个链接",
        "{P}还有别的颜色吗", "怎么投诉流程", "售后政策发我一下", "有差评的话怎么处理", "延迟发货怎么赔",
        # bargaining and conditions: questions, not complaints
        "价格能再优惠点吗", "可以再便宜一些吗", "有没有更低的价", "{P}能打个折吗", "最低多少钱", "能少点不",
        "便宜点我就买了", "多买能便宜吗", "老客户有优惠吗", "能送点赠品吗", "退回去的邮费谁承担",
        "退换货运费怎么算", "如果坏了运费谁付", "不喜欢能退吗", "坏了包换吗", "要是有问题怎么办",
        "万一丢件了怎么办", "寄到{CITY}几天", "{CITY}能发吗", "说明书是英文的吗", "有中文版吗",
        "还没想好", "还在考虑", "暂时不确定", "不太清楚", "看情况吧", "下个月再说", "先了解一下",
        "好哒", "好嘞", "还没用过{P}，先问问", "第一次买，想问问", "需要先交定金吗", "定金多少", "定金能退吗",
        "尾款什么时候付", "可以分期吗",
    ],
    "negative": [
        "等了{N}天还没发货{E_NEG}", "{P}用了{N}天就坏了", "{P}收到就是坏的", "{PERSON}一直不回消息",
        "{PERSON}态度太差了",
        "差评{E_NEG}", "垃圾{P}", "{P}真垃圾", "太坑了", "什么破{P}", "骗子", "跟图片完全不一样", "虚假宣传",
        "又发错货了", "少发了一件，怎么回事", "退款{N}天了还没到账", "怎么又扣我钱", "重复扣款没人管",
        "物流慢死了", "包装都压烂了", "{P}一直闪退", "{P}根本用不了", "气死了{E_NEG}", "无语{E_NEG}",
        "太失望了", "再也不买了", "我要投诉", "投诉你们", "能不能靠谱点", "说好{T}到的又没到", "问了好几遍没人理",
        "你们的机器人听不懂人话", "一点用都没有", "太慢了{E_NEG}", "服务太烂了", "质量太差", "不满意",
        "很不满意", "这次真的很不满意", "麻烦认真点，又错了", "不好意思，但是{P}真的很难用", "实在太差劲了",
        "{P}发烫，吓死人", "说明书乱七八糟", "客服推来推去", "电话打不通", "等到现在还没人处理",
        "给个说法吧", "把钱退给我", "我要退款，太差了", "这服务也太差了吧", "被坑了", "后悔买了",
        "别再拖了行吗", "还要等多久啊{E_NEG}", "搞什么啊", "{P}一周就坏，质量堪忧", "烂透了", "心累",
        "多扣了我{N}十块钱", "账单不对，多收了钱", "乱扣费{E_NEG}", "{P}又登不上了", "怎么又打不开了",
        "真的很生气", "这也太离谱了", "你们到底管不管", "别再敷衍我了", "糟糕的体验", "越来越差了",
        # sarcasm: praise words, a complaint meant
        "真棒，又延迟了", "好极了，第三次发错货", "谢谢你们啊，让我等了一个月", "呵呵", "呵呵哒", "真是服了",
        "你们可真行", "厉害了，{P}又坏了", "太好了，又要重新寄", "真是好服务啊，一周没人回", "感谢你们让我白跑一趟",
    ],
    "positive": [
        "谢谢{E_POS}", "谢谢啦", "非常感谢", "感谢耐心解答", "好评{E_POS}", "{P}很好用{E_POS}", "{P}质量不错",
        "物流很快{E_POS}", "包装很用心", "{PERSON}态度很好", "{PERSON}很专业", "太棒了{E_POS}", "绝绝子",
        "yyds", "{P} yyds", "还不错", "挺好的", "不错不错", "满意", "非常满意{E_POS}", "超出预期", "性价比很高",
        "问题解决了，谢谢", "搞定了，感谢", "下次还来", "已经推荐给朋友了", "回购了{E_POS}", "点赞{E_POS}",
        "{PERSON}辛苦了", "速度很快，棒", "好用{E_POS}", "爱了爱了", "真香", "太好了", "nice", "完美",
        "没想到这么快就到了", "{P}比想象的好", "很贴心", "服务周到", "给你们点个赞", "很靠谱",
        "不愧是大牌", "物美价廉", "效果很好", "体验很好", "很喜欢{E_POS}", "安装师傅很细心",
        "{P}杠杠的", "{P}比预期好太多", "比我想的好", "666", "6666", "牛{E_POS}", "{PERSON}太给力了",
    ],
}

EN_SLOTS = {
    "P": ["headphones", "the printer", "the app", "my order", "the router", "the charger", "the subscription",
          "the software", "the laptop", "the package", "the watch", "the camera", "the course", "the plan"],
    "PLACE": ["Canada", "Texas", "Berlin", "Hong Kong", "Singapore", "London", "Sydney", "Shanghai"],
    "N": ["two", "three", "five", "ten", "several"],
    "T": ["tomorrow", "on Friday", "next week", "this afternoon", "Monday morning", "at 3pm"],
    "COLOR": ["black", "white", "blue", "silver"],
    "E_NEG": ["😡", "🙄", "😤", ""],
    "E_POS": ["👍", "😊", "🙏", "🎉", ""],
    "WHO": ["your support", "the agent", "your team", "the courier", "customer service"],
}

EN = {
    "neutral": [
        "how long does shipping take to {PLACE}", "who pays for return shipping", "can you do a better price",
        "is there a discount for {N} units", "what if {P} breaks, is there a warranty", "is the manual in English",
        "does it come in {COLOR}", "how much is {P}", "when will {P} ship", "where is my order",
        "can you track {P} for me", "can I change the delivery address", "can I cancel {P}", "can you expedite it",
        "do you ship to {PLACE}", "is shipping free", "is VAT included", "can I get an invoice", "send me the quote",
        "can we schedule a call {T}", "is {T} ok for a demo", "do you have a free trial", "can I see a demo",
        "what's the difference between the plans", "how do I reset my password", "I didn't get the code",
        "how do I set up {P}", "does it work with Mac", "what are your opening hours", "are you open on Sundays",
        "do you have a store in {PLACE}", "how do I contact support", "how do returns work",
        "how long do refunds take", "can I pay by card", "can I pay later", "we are {N} people",
        "budget is around 10k", "within 3 months", "not sure yet", "I'll think about it", "let me check with my boss",
        "talk later", "ok", "okay", "sure", "yes", "YES", "no", "got it", "noted", "fine", "hi", "hello",
        "hey there", "good morning", "anyone there?", "my name is Anna Lee", "Tom", "Acme Ltd", "we're Globex Inc",
        "+1 415 555 0134", "my number is 13800138000", "anna@example.com", "1", "2", "/start", "/help", "human",
        "agent please", "bot", "?", "...", "hmm", "I need it by {T}", "what's the status of order 1234",
        "is {P} refurbished", "will it fit in a small room", "does it break easily", "is it waterproof",
        "any coupons", "what's your refund policy", "what happens if the parcel is lost", "do you price match",
        "can you go any lower", "is that your best price", "any chance of a discount", "cheaper if I buy more?",
        "who covers the shipping if I return it", "what if it arrives damaged", "if it's faulty can I swap it",
        "I'm not sure", "haven't decided", "still deciding", "no idea yet", "maybe next month", "just looking",
        "don't know yet", "depends on the price", "unsure for now",
    ],
    "negative": [
        "still waiting for {P} after {N} weeks {E_NEG}", "{P} arrived broken", "{P} stopped working after a day",
        "{WHO} never replies", "{WHO} was rude", "worst service ever", "this is a scam", "total rip-off",
        "{P} is garbage", "{P} is useless", "you charged me twice", "refund still hasn't arrived",
        "I want my money back", "not happy at all", "really disappointed", "so frustrating {E_NEG}",
        "this is unacceptable", "sorry but this is not acceptable", "I've asked {N} times already",
        "you said {T} and it's still not here", "can't sign in again {E_NEG}", "locked out AGAIN",
        "you told me it would ship {T}, it didn't", "overcharged again", "it crashed AGAIN",
        "why is it STILL not shipped?!", "the courier lost my parcel", "packaging was crushed",
        "the color is nothing like the photos", "this update broke everything", "{P} keeps crashing",
        "your bot is useless", "this is a joke", "meh, expected better", "ugh {E_NEG}", "terrible experience",
        "never buying again", "I'm filing a complaint", "wrong item again", "missing parts again",
        "nobody is helping me", "fix this now", "how is this so slow {E_NEG}", "awful quality",
        "I regret buying {P}", "you keep ignoring me", "cheap junk", "it broke on day one", "what a mess",
        # sarcasm
        "great, another delay", "wow, thanks for nothing", "lovely, broken again", "oh brilliant, wrong item again",
        "fantastic, {P} died after a week", "thanks a lot for wasting my time", "just perfect, still no refund",
    ],
    "positive": [
        "thanks {E_POS}", "thank you so much", "thanks, that solved it", "love {P} {E_POS}", "great service",
        "super fast delivery {E_POS}", "{WHO} was very helpful", "works perfectly", "awesome", "not bad at all",
        "pretty good", "really happy with {P}", "exactly what I needed", "amazing quality", "cheers",
        "appreciate it", "you guys rock", "10/10", "would buy again", "well packed, thanks", "brilliant",
        "perfect, thank you", "much better than expected", "smooth experience", "nice one {E_POS}",
        "all good now, thanks", "you're the best", "impressed with {P}", "great value for money",
        "the setup was easy", "fantastic support",
        "not bad", "not too bad at all", "honestly not bad {E_POS}", "way better than I expected",
    ],
}


def fill(pattern: str, slots: dict[str, list[str]], rng: random.Random) -> str:
    out = pattern
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        out = out[:start] + rng.choice(slots[out[start + 1:end]]) + out[end + 1:]
    return out.strip()


def variants(text: str, language: str, rng: random.Random) -> list[str]:
    """How customers type it: as written, with punctuation, without, a typo-like casual form."""
    out = [text]
    if language == "zh":
        out.append(text + rng.choice(["？", "。", "！", "~", "呀", "啊", "哈"]))
    else:
        out.append(rng.choice([text.capitalize(), text.lower(), text + rng.choice(["?", ".", "!", " pls", " thx"])]))
    return out


def compose(patterns: dict[str, list[str]], slots: dict[str, list[str]], language: str, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines: dict[str, str] = {}
    for label, group in patterns.items():
        for pattern in group:
            for _ in range(PER_PATTERN if "{" in pattern else 1):
                for text in variants(fill(pattern, slots, rng), language, rng):
                    lines.setdefault(text, label)
    return [f"{label}\t{text}" for text, label in sorted(lines.items())]


def main() -> None:
    for name, patterns, slots, language in (("chat_zh.tsv", ZH, ZH_SLOTS, "zh"), ("chat_en.tsv", EN, EN_SLOTS, "en")):
        rows = compose(patterns, slots, language, seed=2026)
        (HERE / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
        print(f"{name}: {len(rows)} lines")


if __name__ == "__main__":
    main()
