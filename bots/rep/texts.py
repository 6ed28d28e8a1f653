"""What the rep bot says, in Chinese and English."""

from __future__ import annotations

# Chinese names reps may type for the pipeline stages.
STAGE_ALIASES = {"新线索": "new", "已联系": "contacted", "已确认": "qualified", "有效": "qualified",
                 "方案": "proposal", "报价": "proposal", "成交": "won", "赢单": "won", "丢单": "lost", "输单": "lost"}

TEXTS: dict[str, dict[str, str]] = {
    "help": {
        "en": ("Commands (N is the conversation number on a card):\n"
               "/claim N  take the conversation\n"
               "/r N text  reply to the customer (or press Reply on a card, then just type)\n"
               "/note N text  internal note, never sent\n"
               "/stage N {stages}\n"
               "/assign N @user  hand over to a colleague\n"
               "/mine  your open conversations\n"
               "/card N  the customer's card and last messages\n"
               "/resolve N  mark it resolved; the customer is asked how we did"),
        "zh": ("指令（N 为卡片上的会话编号）：\n"
               "/认领 N  认领会话\n"
               "/回复 N 内容  回复客户（或点卡片上的“回复”后直接输入）\n"
               "/备注 N 内容  内部备注，不发给客户\n"
               "/阶段 N 新线索|已联系|已确认|方案|成交|丢单\n"
               "/转交 N @同事  转交给同事\n"
               "/我的  我的进行中会话\n"
               "/卡片 N  客户卡片与最近消息\n"
               "/解决 N  标记为已解决，并请客户评价服务"),
    },
    "unknown_command": {"en": "Unknown command {command}. Send /help for the list.",
                        "zh": "未知指令 {command}。发送 /帮助 查看指令列表。"},
    "usage": {"en": "Usage: {usage}", "zh": "用法：{usage}"},
    "not_registered": {
        "en": "You are not registered as a rep in SCRM Hub (WeCom userid {userid}). Ask an admin to add you.",
        "zh": "您（企业微信账号 {userid}）尚未登记为 SCRM Hub 的销售，请联系管理员添加。"},
    "claimed": {"en": "Conversation #{id} with {name} is yours. Reply with /r {id} text or press Reply.",
                "zh": "会话 #{id}（{name}）已由您认领。用 /回复 {id} 内容 或点“回复”回复客户。"},
    "already_yours": {"en": "Conversation #{id} is already yours.", "zh": "会话 #{id} 已经是您的了。"},
    "sent": {"en": "Sent to {name} (#{id}).", "zh": "已发送给 {name}（#{id}）。"},
    "focus": {"en": "Type your reply to {name} (#{id}); each message goes to the customer. /r {id} also works.",
              "zh": "请直接输入回复 {name}（#{id}）的内容，每条消息都会发给客户。也可用 /回复 {id} 内容。"},
    "no_focus": {"en": "Not sent: press Reply on a card or use /r N text. Send /help for the commands.",
                 "zh": "未发送：请先点卡片上的“回复”，或用 /回复 N 内容。发送 /帮助 查看指令。"},
    "noted": {"en": "Note added to #{id}.", "zh": "已为 #{id} 添加备注。"},
    "staged": {"en": "#{id} moved from {previous} to {stage}.", "zh": "#{id} 阶段已由 {previous} 改为 {stage}。"},
    "assigned": {"en": "#{id} is now {name}'s.", "zh": "#{id} 已转交给 {name}。"},
    "released": {"en": "#{id} is back in the queue; other reps were alerted.",
                 "zh": "#{id} 已退回待认领，已通知其他同事。"},
    "snoozed": {"en": "I will remind you about #{id} in {minutes} minutes.",
                "zh": "{minutes} 分钟后提醒您跟进 #{id}。"},
    "mine_empty": {"en": "You have no open conversations.", "zh": "您目前没有进行中的会话。"},
    "mine": {"en": "Your open conversations:", "zh": "您的进行中会话："},
    "no_user": {"en": "No active colleague called {name}.", "zh": "找不到名为 {name} 的在职同事。"},
    # Refusals from crm_core.people.reps, by code.
    "no_conversation": {"en": "There is no conversation #{id}.", "zh": "不存在会话 #{id}。"},
    "not_claimed": {"en": "#{id} is not yours: /claim {id} first.", "zh": "#{id} 还不是您的会话，请先 /认领 {id}。"},
    "not_yours": {"en": "#{id} belongs to another rep.", "zh": "#{id} 属于其他同事。"},
    "taken": {"en": "Too late: #{id} was already claimed by {owner}.", "zh": "晚了一步：#{id} 已被 {owner} 认领。"},
    "not_a_rep": {"en": "{user} cannot own conversations.", "zh": "{user} 不能负责会话。"},
    "empty": {"en": "Nothing to send: the text is empty.", "zh": "内容为空，未发送。"},
    "closed": {"en": "#{id} is closed.", "zh": "#{id} 已关闭。"},
    "bad_stage": {"en": "Unknown stage {stage}. Stages: {stages}.", "zh": "未知阶段 {stage}。可用阶段：{stages}。"},
    "forbidden": {"en": "You are not allowed to do that.", "zh": "您没有权限执行此操作。"},
    "bad_target": {"en": "Choose another, active colleague.", "zh": "请选择另一位在职同事。"},
    "handle_taken": {"en": "That account is linked to another user.", "zh": "该账号已关联到其他用户。"},
    # Cards to reps.
    "card_new_lead": {"en": "New lead #{id}", "zh": "新线索 #{id}"},
    "card_reply": {"en": "{name} replied (#{id})", "zh": "{name} 回复了（#{id}）"},
    "card_churn": {"en": "Churn alert: {name} deleted {rep} (#{id})", "zh": "流失预警：{name} 删除了 {rep}（#{id}）"},
    "card_added": {"en": "{name} added you on WeCom (#{id})", "zh": "{name} 添加了您为联系人（#{id}）"},
    "card_compliance": {"en": "Check wording: {rep} on #{id}", "zh": "合规提醒：{rep}（#{id}）"},
    "card_opinion": {"en": "Opinion alert: {channel}, {share} negative", "zh": "舆情预警：{channel} 负面 {share}"},
    "card_negative": {"en": "Unhappy customer: {name} (#{id}, {percent}% sure)",
                      "zh": "负面情绪：{name}（#{id}，置信度 {percent}%）"},
    "card_sla": {"en": "{name} has waited {minutes} min for an answer (#{id})",
                 "zh": "{name} 已等待回复 {minutes} 分钟（#{id}）"},
    "card_sla_escalation": {"en": "Escalation: {name} unanswered {minutes} min (#{id})",
                            "zh": "升级提醒：{name} {minutes} 分钟无人回复（#{id}）"},
    "card_reminder": {"en": "Reminder: follow up #{id} ({name})", "zh": "提醒：跟进 #{id}（{name}）"},
    "card_handoff": {"en": "Handoff #{id}: {reason}", "zh": "转人工 #{id}：{reason}"},
    "card_form_done": {"en": "Lead form filled: {name} (#{id})", "zh": "客户已填写线索表单：{name}（#{id}）"},
    "card_low_csat": {"en": "Low satisfaction: {name} gave {score}/5 (#{id})",
                      "zh": "满意度低：{name} 评分 {score}/5（#{id}）"},
    "resolved": {"en": "#{id} marked resolved; {name} is asked how we did.",
                 "zh": "#{id} 已标记为解决，已请 {name} 评价服务。"},
    "card_lead_routed": {"en": "New lead L{lead} for you: {name} (#{id}, {source})",
                         "zh": "新线索 L{lead} 分配给您：{name}（#{id}，{source}）"},
    "card_who": {"en": "{name} · stage {stage}", "zh": "{name} · 阶段 {stage}"},
    "card_from": {"en": " · source {source}", "zh": " · 来源 {source}"},
    "card_owner_notes": {"en": "owner: {owner} · notes: {notes}", "zh": "负责人：{owner} · 备注：{notes}"},
    "card_unreachable": {"en": " · unreachable", "zh": " · 无法联系"},
    "card_source": {"en": "source: {source}", "zh": "来源：{source}"},
    "card_stage_owner": {"en": "stage: {stage} · owner: {owner}", "zh": "阶段：{stage} · 负责人：{owner}"},
    "card_hot_lead": {"en": "Hot lead L{lead}: {name} scores {score} (#{id})",
                      "zh": "高意向线索 L{lead}：{name} 评分 {score}（#{id}）"},
    "card_lead_sla": {"en": "Lead L{lead} ({name}) still has no first contact after {minutes} min",
                      "zh": "线索 L{lead}（{name}）{minutes} 分钟仍未首次联系"},
    "card_lead_escalation": {"en": "Escalation: lead L{lead} ({name}) of {rep} uncontacted for {minutes} min",
                             "zh": "升级：{rep} 的线索 L{lead}（{name}）{minutes} 分钟未联系"},
    "digest_title": {"en": "Your day, {day}", "zh": "今日概览 {day}"},
    "digest_open": {"en": "{count} open conversations are yours.", "zh": "您负责 {count} 个进行中的会话。"},
    "digest_waiting": {"en": "{count} customers wait for your answer, the longest {hours} h:",
                       "zh": "{count} 位客户在等您回复，最久已等 {hours} 小时："},
    "card_assigned": {"en": "#{id} ({name}) was handed to you by {by}", "zh": "{by} 将 #{id}（{name}）转交给您"},
}


def say(key: str, lang: str, **params: object) -> str:
    entry = TEXTS[key]
    return entry.get(lang, entry["en"]).format(**params)


def bilingual(key: str, **params: object) -> str:
    """Both languages, Chinese first: card titles read by reps of either language."""
    return f"{say(key, 'zh', **params)} / {say(key, 'en', **params)}"
