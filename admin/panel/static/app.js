// SCRM Hub admin panel: pages over the REST API (/api/v1), which checks every role.
// Every value shown is escaped (esc); every change carries the session's CSRF token.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]').content;
const ME = JSON.parse(document.querySelector('meta[name="me"]').content);
let LANG = document.querySelector('meta[name="language"]').content === "zh" ? "zh" : "en";

// ---- texts ------------------------------------------------------------------------

const TEXT = {
  en: {
    dashboard: "Dashboard", inbox: "Inbox", contacts: "Contacts", leads: "Leads", campaigns: "Campaigns",
    channels: "Channels", faq: "Knowledge base", monitoring: "Monitoring", users: "Users & teams", audit: "Audit log",
    sign_out: "Sign out", other_language: "中文", refused: "Your role may not open this page.",
    loading: "Loading…", nothing: "Nothing here yet.", save: "Save", cancel: "Cancel", search: "Search",
    all: "All", saved: "Saved", error: "Error",
    range: "Period", last_days: "Last {n} days", tile_messages: "messages (in and out)", tile_leads: "leads in the pipeline",
    tile_negative: "negative", tile_alerts: "opinion alerts",
    messages_per_day: "Messages per day by channel", funnel: "Leads funnel by stage",
    response_times: "Median response time (seconds)", bot: "bot", person: "person",
    sentiment_trend: "Negative share of customer messages (⚠ opinion alert)", negative: "negative",
    campaign_results: "Campaign results", enrolled: "Enrolled", sent: "Sent", delivered: "Delivered",
    replied: "Replied", opted_out: "Opted out", converted: "Converted",
    channel: "Channel", owner: "Owner", status: "Status", sentiment: "Sentiment", me: "Mine", unowned: "Unowned",
    open: "Open", closed: "Closed", waiting: "Waiting for us", handoff: "Handed to a person",
    positive: "Positive", neutral: "Neutral", pick_conversation: "Pick a conversation.",
    reply_on: "on", reply: "Reply", send: "Send", note: "Note", add_note: "Add note", assign: "Assign", queue: "Back to the queue",
    reply_placeholder: "Write to the customer…", note_placeholder: "Internal note (the customer never sees it)",
    sent_ok: "Queued: its delivery shows under the message", note_ok: "Note added", assigned_ok: "Assigned",
    d_queued: "Queued", d_sending: "Sending…", d_delivered: "Delivered", d_sent: "Sent (the platform does not confirm delivery)",
    d_awaiting_confirmation: "Waiting for the rep to confirm it in WeCom (群发助手)", d_failed: "Failed", d_unreachable: "Cannot reach the customer here",
    d_held: "Held", d_in_doubt: "Maybe delivered (the sender stopped mid-send): not sent again", d_cancelled: "Not sent",
    d_next: "goes at {at} at the earliest",
    name: "Name", stage: "Stage", source: "Source", language: "Language", created: "Created",
    identities: "Identities", timeline: "Timeline across channels", consent: "Consent history", proof: "proof",
    phones: "Phones", emails: "Emails", purpose: "Purpose", purpose_marketing: "Marketing", purpose_service: "Service",
    every_channel: "every channel", consent_none: "No consent recorded: no marketing is sent.",
    awaiting_confirmation: "{purpose}: waiting for the person's own yes, until {until}", consent_note: "Where it comes from",
    consent_note_hint: "the signed form, the call of 3 May…", double_opt_in: "Ask the person to confirm first (double opt-in)",
    record_consent: "Record", granted: "granted", withdrawn: "withdrawn", export: "Export (JSON)", erase: "Erase", score: "Score",
    erase_confirm: "Erase this contact's personal data? Type ERASE to confirm.", erased: "Erased",
    company: "Company", segment: "Segment", new_campaign: "New campaign", start: "Start", pause: "Pause",
    results: "Results", audience: "Audience", tags: "Tags (comma separated)", stages: "Stages (comma separated)",
    channels_filter: "Channels (comma separated kinds)", min_score: "Minimum lead score",
    consent_only: "Only contacts who consented to marketing", preview: "Preview",
    audience_count: "{n} contacts match now", audience_count_one: "1 contact matches now", step: "Step", add_step: "Add step", remove: "Remove",
    template_zh: "Message (中文)", template_en: "Message (English)", variables: "Variables: {name} {rep} {campaign}",
    delay: "Delay (minutes after the previous step)", window_start: "Send from (HH:MM)", window_end: "Send until (HH:MM)",
    condition: "Condition", cond_none: "Always", cond_not_replied: "Only if they have not replied",
    cond_replied: "Only if they replied", cond_clicked: "Only if they pressed a button", cond_not_clicked: "Only if they pressed no button",
    cond_stages: "Only in these stages", cond_tag: "Only with this tag", cond_value: "Stages (comma separated) or tag",
    cond_else: "Otherwise", cond_leave: "leave the campaign", go_to_step: "go to step {n}", delay_from: "Delay counted from",
    from_previous: "the previous step", from_enrolment: "joining the campaign", exits: "Leave the campaign on", exit_reply: "a reply", exit_conversion: "a conversion",
    caps: "Campaign caps (on top of the hub's marketing cap)", cap_messages: "At most … messages to one person",
    cap_days: "… in this many days", cap_per_day: "At most … messages a day in all", caps_hint: "A step over a cap waits until it fits; none is dropped.",
    add_channel_wording: "Word it differently for a channel", channel_wording: "Wording for {kind}",
    caps_none: "none", per_person: "{n} per person in {d} days", per_day: "{n} a day",
    copy_campaign: "Copy", end_campaign: "End", end_confirm: "End {name}? Its queued steps are cancelled; it cannot be started again.",
    after_minutes: "after {n} min", worded_for: "own wording for {kinds}", enrolments: "Enrolments", next_step: "Next step",
    due: "Due", enrolment_active: "active", enrolment_completed: "completed", enrolment_exited: "left",
    create_campaign: "Create campaign", created_ok: "Created", started_ok: "Started", paused_ok: "Paused",
    any_channel: "Their latest channel", add_channel: "Add a channel account", kind: "Kind",
    test_connection: "Test connection", connection_ok: "Connection works: {name}", webhook_url: "Webhook URL (paste it into the platform)",
    secrets_note: "Secrets are stored encrypted and never shown again.", api_base: "API base URL (simulators, proxies)",
    account_name: "Account name", copy: "Copy", copied: "Copied", active: "active",
    switched_off: "off", switch_off: "Switch off", switch_on: "Switch on",
    switch_off_confirm: "Switch off {name}? Messages to it are refused and nothing is sent on it until it is switched on again.",
    replace_credentials: "Replace the credentials", replace_credentials_hint: "Leave empty to keep the current ones. A new set (a rotated secret) is tested first and must be for the same account.",
    question_zh: "Questions (中文, one per line)", question_en: "Questions (English, one per line)",
    answer_zh: "Answer (中文)", answer_en: "Answer (English)", synonyms: "Synonym groups (one group per line, words separated by commas)",
    image_url: "Picture URL", link_url: "Link URL", new_entry: "New entry", try_question: "Try a question",
    confident: "would answer", not_confident: "not sure: offers a person", delete: "Delete", deleted: "Deleted",
    alerts: "Opinion alerts", volume: "Messages", peak: "Peak negative share", terms: "Top terms",
    all_kinds: "Every slice", alert_open: "Open", alert_closed: "Closed", pick_alert: "Pick an alert to see its trend and the messages behind it.",
    alert_trend: "Negative share per hour in {slice}", alert_messages: "The messages behind it", open_in_inbox: "Open in the inbox",
    rules_title: "Keyword rules and sensitive words", rules_hint: "Products watched raise an alert when complaints name them; sensitive words in reps' replies are flagged to their manager.",
    rules_settings_only: "An admin or manager sees these in Settings.",
    username: "Username", display_name: "Display name", role: "Role", manager: "Manager", new_user: "New user",
    set_password: "Set password", password: "Password", password_set: "Password set", team: "Team",
    teams: "Teams", new_team: "New team", edit: "Edit", members: "Members", team_channels: "Takes new leads from",
    team_channels_hint: "Leads and unclaimed customers on these channels go to this team's reps first.",
    no_team: "No team", no_manager: "No manager", territory: "Territory", regions: "Regions (comma separated)",
    industries: "Industries (comma separated)", active_user: "Active (may sign in, gets leads)", edit_user: "Edit {name}",
    delete_team_confirm: "Delete this team? Its members stay, in no team.",
    hand_over_to: "Hand their open conversations and leads to", hand_over_nobody: "Nobody (keep them)",
    hand_over_hint: "For a rep who leaves or moves: their customers go on with the colleague, history and all.",
    handed_over: "{n} conversations handed over",
    when: "When", who: "Who", action: "Action", entity: "Entity", details: "Details", more: "More",
    audit_action_hint: "Action starts with… (campaign., user.)", audit_all_entities: "Every kind", audit_everyone: "Everyone",
    import_leads: "Import leads", import: "Import", reason: "Reason",
    export_csv: "Export (CSV)", all_stages: "All stages", all_owners: "All owners", stage_moved: "Stage moved",
    status_open: "Open", status_closed: "Closed", all_statuses: "Open and closed",
    merge_into_this: "Merge another contact (#) into this one", merge: "Merge", merged: "Merged",
    merge_preview: "{source} → {target}: what moves", merge_conflicts: "Where both have one, this contact's stays:",
    merge_result: "Afterwards", merge_identities: "Identities", merge_conversations: "Conversations",
    merge_contact_details: "Phones and emails", merge_consent_events: "Consent events", merge_consent_requests: "Consent requests",
    merge_satisfaction_surveys: "Satisfaction surveys", merge_leads: "Leads", merge_enrolments: "Campaign enrolments",
    merge_event_registrations: "Event registrations", merge_tags: "Tags",
    change_password: "Change my password", current_password: "Current password", new_password: "New password",
    repeat_password: "New password again", passwords_differ: "The two new passwords differ",
    password_rules: "At least 10 characters, not containing your username. You sign in again afterwards, everywhere.",
    settings: "Settings", changed_in_panel: "changed here", environment: "environment", reset: "back to the environment's",
    setting_default: "the built-in list", settings_read_only: "Only an admin changes these.",
    section_sla: "SLA", section_routing: "Lead routing", section_marketing: "Marketing limits", section_monitoring: "Monitoring",
    setting_sla_first_response_minutes: "First response within (minutes)", setting_hint_sla_first_response_minutes: "then the owner (or every rep) is reminded",
    setting_sla_escalate_minutes: "Escalate after (minutes)", setting_hint_sla_escalate_minutes: "then the manager is told",
    setting_lead_stages: "Pipeline stages", setting_hint_lead_stages: "comma separated, first stage first; must include won and lost",
    setting_lead_routing: "New leads go to", setting_hint_lead_routing: "claim: a card every rep may claim; round_robin / load: a rep, by territory",
    setting_lead_hot_score: "Hot lead score", setting_hint_lead_hot_score: "a lead this high alerts its owner",
    setting_lead_first_response_minutes: "Lead first response within (minutes)", setting_hint_lead_first_response_minutes: "for a new lead's owner",
    setting_lead_escalate_minutes: "Lead escalation after (minutes)", setting_hint_lead_escalate_minutes: "then the manager is told",
    setting_marketing_cap_count: "Marketing messages at most", setting_hint_marketing_cap_count: "per person, across channels",
    setting_marketing_cap_days: "… in this many days", setting_hint_marketing_cap_days: "the cap's window",
    setting_marketing_quiet_hours: "Quiet hours", setting_hint_marketing_quiet_hours: "HH:MM-HH:MM in the person's time zone, empty for none",
    setting_negative_alert_confidence: "Negative alert confidence", setting_hint_negative_alert_confidence: "0.34-1: how sure the model must be to alert",
    setting_opinion_products: "Keyword rules: products watched", setting_hint_opinion_products: "one per line: product: word, word",
    setting_compliance_terms: "Sensitive words in reps' replies", setting_hint_compliance_terms: "one list per line: category: word, word; flagged to the manager",
    import_hint: "CSV (UTF-8 or GBK) or Excel; columns name / 姓名, company / 公司, phone / 手机, email / 邮箱, source, consent…",
    import_rows: "{n} of {total} rows", import_rejected: "Rejected rows (fix them and import the file again)",
    import_download: "Download the rejected rows (CSV)", import_rows_label: "Rows",
    import_contacts_created: "New contacts", import_contacts_matched: "Matched to known people", import_leads_opened: "Leads opened",
    import_leads_existing: "Leads already open", import_marketing_consents: "Marketing consents", import_rejected_count: "Rejected",
  },
  zh: {
    dashboard: "仪表盘", inbox: "会话收件箱", contacts: "联系人", leads: "线索", campaigns: "营销活动",
    channels: "渠道", faq: "知识库", monitoring: "舆情监控", users: "用户与团队", audit: "审计日志",
    sign_out: "退出登录", other_language: "English", refused: "您的角色无权打开此页面。",
    loading: "加载中…", nothing: "暂无数据。", save: "保存", cancel: "取消", search: "搜索",
    all: "全部", saved: "已保存", error: "错误",
    range: "时间范围", last_days: "最近 {n} 天", tile_messages: "条消息（收发）", tile_leads: "条线索",
    tile_negative: "负面占比", tile_alerts: "条舆情告警",
    messages_per_day: "各渠道每日消息量", funnel: "线索漏斗（按阶段）",
    response_times: "响应时间中位数（秒）", bot: "机器人", person: "人工",
    sentiment_trend: "客户消息负面占比（⚠ 舆情告警）", negative: "负面",
    campaign_results: "营销活动效果", enrolled: "参与", sent: "已发送", delivered: "已送达",
    replied: "已回复", opted_out: "已退订", converted: "已转化",
    channel: "渠道", owner: "负责人", status: "状态", sentiment: "情绪", me: "我的", unowned: "未分配",
    open: "进行中", closed: "已关闭", waiting: "待我们回复", handoff: "已转人工",
    positive: "正面", neutral: "中性", pick_conversation: "请选择一个会话。",
    reply_on: "通过", reply: "回复", send: "发送", note: "备注", add_note: "添加备注", assign: "分配", queue: "退回待领取",
    reply_placeholder: "回复客户…", note_placeholder: "内部备注（客户看不到）",
    sent_ok: "已加入发送队列，发送状态显示在消息下方", note_ok: "已添加备注", assigned_ok: "已分配",
    d_queued: "排队中", d_sending: "发送中…", d_delivered: "已送达", d_sent: "已发出（平台不回报是否送达）",
    d_awaiting_confirmation: "等待员工在企业微信中确认发送（群发助手）", d_failed: "发送失败", d_unreachable: "无法通过此渠道联系到客户",
    d_held: "暂缓发送", d_in_doubt: "可能已送达（发送中断），不会重发", d_cancelled: "未发送",
    d_next: "最早 {at} 发出",
    name: "姓名", stage: "阶段", source: "来源", language: "语言", created: "创建时间",
    identities: "身份", timeline: "跨渠道时间线", consent: "授权记录", proof: "凭证",
    phones: "手机", emails: "邮箱", purpose: "用途", purpose_marketing: "营销", purpose_service: "服务",
    every_channel: "全部渠道", consent_none: "没有同意记录：不会发送营销消息。",
    awaiting_confirmation: "{purpose}：等待本人确认，截至 {until}", consent_note: "来源说明",
    consent_note_hint: "签字的表格、5 月 3 日的电话……", double_opt_in: "先请本人确认（双重确认）",
    record_consent: "记录", granted: "同意", withdrawn: "撤回", export: "导出 (JSON)", erase: "删除个人数据", score: "评分",
    erase_confirm: "确定删除该联系人的个人数据？请输入 ERASE 确认。", erased: "已删除",
    company: "公司", segment: "分层", new_campaign: "新建活动", start: "启动", pause: "暂停",
    results: "效果", audience: "目标人群", tags: "标签（逗号分隔）", stages: "阶段（逗号分隔）",
    channels_filter: "渠道（逗号分隔）", min_score: "最低线索评分",
    consent_only: "仅限同意接收营销信息的联系人", preview: "预览",
    audience_count: "当前匹配 {n} 位联系人", audience_count_one: "当前匹配 1 位联系人", step: "步骤", add_step: "添加步骤", remove: "删除",
    template_zh: "消息（中文）", template_en: "消息（English）", variables: "变量：{name} {rep} {campaign}",
    delay: "延迟（上一步之后的分钟数）", window_start: "发送开始 (HH:MM)", window_end: "发送结束 (HH:MM)",
    condition: "条件", cond_none: "总是发送", cond_not_replied: "仅当客户未回复", cond_replied: "仅当客户已回复",
    cond_clicked: "仅当客户点过按钮", cond_not_clicked: "仅当客户没点按钮", cond_stages: "仅限以下阶段", cond_tag: "仅限带此标签",
    cond_value: "阶段（逗号分隔）或标签", cond_else: "否则", cond_leave: "退出活动", go_to_step: "跳到第 {n} 步",
    delay_from: "延迟起算", from_previous: "上一步", from_enrolment: "加入活动时",
    exits: "以下情况退出活动", exit_reply: "客户回复", exit_conversion: "客户转化",
    caps: "活动频次上限（在全局营销上限之内）", cap_messages: "每人最多……条",
    cap_days: "……统计天数", cap_per_day: "每天合计最多……条", caps_hint: "超出上限的步骤会等待，不会丢弃。",
    add_channel_wording: "为某个渠道单独撰写", channel_wording: "{kind} 渠道文案",
    caps_none: "无", per_person: "每人 {d} 天内 {n} 条", per_day: "每天 {n} 条",
    copy_campaign: "复制", end_campaign: "结束", end_confirm: "结束 {name}？已排队的步骤将取消，之后不能再启动。",
    after_minutes: "{n} 分钟后", worded_for: "{kinds} 单独文案", enrolments: "参与者", next_step: "下一步",
    due: "到期", enrolment_active: "进行中", enrolment_completed: "已完成", enrolment_exited: "已退出",
    create_campaign: "创建活动", created_ok: "已创建", started_ok: "已启动", paused_ok: "已暂停",
    any_channel: "客户最近使用的渠道", add_channel: "添加渠道账号", kind: "类型",
    test_connection: "测试连接", connection_ok: "连接成功：{name}", webhook_url: "回调地址（粘贴到平台后台）",
    secrets_note: "密钥加密存储，保存后不再显示。", api_base: "API 地址（模拟器、代理）",
    account_name: "账号名称", copy: "复制", copied: "已复制", active: "启用",
    switched_off: "已停用", switch_off: "停用", switch_on: "启用",
    switch_off_confirm: "停用 {name}？停用后不再接收发往该账号的消息，也不会通过它发送，直到再次启用。",
    replace_credentials: "更换凭据", replace_credentials_hint: "留空则保留现有凭据。新凭据（如轮换后的密钥）会先测试，且必须属于同一账号。",
    question_zh: "问题（中文，每行一个）", question_en: "问题（English，每行一个）",
    answer_zh: "答案（中文）", answer_en: "答案（English）", synonyms: "同义词组（每行一组，词之间用逗号分隔）",
    image_url: "图片地址", link_url: "链接地址", new_entry: "新建条目", try_question: "试问一个问题",
    confident: "会这样回答", not_confident: "不确定：会转人工", delete: "删除", deleted: "已删除",
    alerts: "舆情告警", volume: "消息数", peak: "负面占比峰值", terms: "高频词",
    all_kinds: "全部维度", alert_open: "进行中", alert_closed: "已结束", pick_alert: "选择一条告警，查看趋势及相关消息。",
    alert_trend: "{slice} 每小时负面占比", alert_messages: "相关消息", open_in_inbox: "在收件箱中打开",
    rules_title: "关键词规则与敏感词", rules_hint: "投诉中提到被监控的产品时告警；销售回复中出现敏感词时通知其经理。",
    rules_settings_only: "管理员或经理可在系统设置中查看。",
    username: "用户名", display_name: "显示名", role: "角色", manager: "上级", new_user: "新建用户",
    set_password: "设置密码", password: "密码", password_set: "密码已设置", team: "团队",
    teams: "团队", new_team: "新建团队", edit: "编辑", members: "成员", team_channels: "负责以下渠道的新线索",
    team_channels_hint: "这些渠道的线索和无人认领的客户优先分配给本团队的销售。",
    no_team: "无团队", no_manager: "无上级", territory: "负责区域", regions: "地区（逗号分隔）",
    industries: "行业（逗号分隔）", active_user: "启用（可登录、可分配线索）", edit_user: "编辑 {name}",
    delete_team_confirm: "删除此团队？成员保留，但不再属于任何团队。",
    hand_over_to: "将其进行中的会话和线索转交给", hand_over_nobody: "不转交",
    hand_over_hint: "销售离职或调岗时：客户连同历史记录交给同事继续跟进。", handed_over: "已转交 {n} 个会话",
    when: "时间", who: "操作人", action: "操作", entity: "对象", details: "详情", more: "更多",
    audit_action_hint: "操作开头为……（campaign.、user.）", audit_all_entities: "全部类型", audit_everyone: "所有人",
    import_leads: "导入线索", import: "导入", reason: "原因",
    export_csv: "导出 (CSV)", all_stages: "全部阶段", all_owners: "全部负责人", stage_moved: "阶段已更新",
    status_open: "进行中", status_closed: "已关闭", all_statuses: "进行中和已关闭",
    merge_into_this: "将另一个联系人（#）合并到此联系人", merge: "合并", merged: "已合并",
    merge_preview: "{source} → {target}：将移动的数据", merge_conflicts: "双方都有时，保留此联系人的：",
    merge_result: "合并后", merge_identities: "身份", merge_conversations: "会话",
    merge_contact_details: "手机与邮箱", merge_consent_events: "授权记录", merge_consent_requests: "授权请求",
    merge_satisfaction_surveys: "满意度调查", merge_leads: "线索", merge_enrolments: "营销活动参与",
    merge_event_registrations: "活动报名", merge_tags: "标签",
    change_password: "修改我的密码", current_password: "当前密码", new_password: "新密码",
    repeat_password: "再次输入新密码", passwords_differ: "两次输入的新密码不一致",
    password_rules: "至少 10 个字符，不能包含用户名。修改后所有设备需重新登录。",
    settings: "系统设置", changed_in_panel: "已在此修改", environment: "环境变量", reset: "恢复为环境变量的值",
    setting_default: "内置列表", settings_read_only: "仅管理员可以修改。",
    section_sla: "服务时效 (SLA)", section_routing: "线索分配", section_marketing: "营销频次", section_monitoring: "监控",
    setting_sla_first_response_minutes: "首次响应时限（分钟）", setting_hint_sla_first_response_minutes: "超时提醒负责人（无人认领时提醒所有销售）",
    setting_sla_escalate_minutes: "升级时限（分钟）", setting_hint_sla_escalate_minutes: "超时通知经理",
    setting_lead_stages: "销售阶段", setting_hint_lead_stages: "逗号分隔，按顺序；须包含 won 和 lost",
    setting_lead_routing: "新线索分配方式", setting_hint_lead_routing: "claim：所有销售可认领；round_robin / load：按区域分配给销售",
    setting_lead_hot_score: "热线索分数", setting_hint_lead_hot_score: "达到此分数提醒负责人",
    setting_lead_first_response_minutes: "线索首次响应时限（分钟）", setting_hint_lead_first_response_minutes: "新线索负责人",
    setting_lead_escalate_minutes: "线索升级时限（分钟）", setting_hint_lead_escalate_minutes: "超时通知经理",
    setting_marketing_cap_count: "营销消息上限", setting_hint_marketing_cap_count: "每人，跨渠道合计",
    setting_marketing_cap_days: "……统计天数", setting_hint_marketing_cap_days: "上限的时间窗口",
    setting_marketing_quiet_hours: "免打扰时段", setting_hint_marketing_quiet_hours: "HH:MM-HH:MM，按客户时区；留空表示不限",
    setting_negative_alert_confidence: "负面告警置信度", setting_hint_negative_alert_confidence: "0.34-1：模型把握多大时告警",
    setting_opinion_products: "关键词规则：监控的产品", setting_hint_opinion_products: "每行一个：产品: 词, 词",
    setting_compliance_terms: "销售回复中的敏感词", setting_hint_compliance_terms: "每行一组：类别: 词, 词；命中时通知经理",
    import_hint: "CSV（UTF-8 或 GBK）或 Excel；列名 name / 姓名、company / 公司、phone / 手机、email / 邮箱、source、consent…",
    import_rows: "已处理 {n} / {total} 行", import_rejected: "未导入的行（修改后可重新导入整个文件）",
    import_download: "下载未导入的行 (CSV)", import_rows_label: "行数",
    import_contacts_created: "新建联系人", import_contacts_matched: "匹配到已有联系人", import_leads_opened: "新建线索",
    import_leads_existing: "已有进行中线索", import_marketing_consents: "营销授权", import_rejected_count: "未导入",
  },
};
const t = (key, vars = {}) => (TEXT[LANG][key] || TEXT.en[key] || key).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
const esc = (s) => (s === null || s === undefined ? "" : String(s)).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
// Loads that overlap (typing in a search, changing a filter): only the newest may draw.
// `fresh(promise)` gives its value, or undefined once a newer load has started.
const newestOnly = () => {
  let started = 0;
  return async (promise) => { const mine = ++started; const value = await promise; return mine === started ? value : undefined; };
};
// "a, b，c" (either comma, as Chinese and English keyboards type it) -> ["a", "b", "c"].
const commaList = (value) => value.split(/[,，]/).map((x) => x.trim()).filter(Boolean);
const when = (iso) => (iso ? new Date(iso).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", {dateStyle: "short", timeStyle: "short"}) : "");

// ---- the API --------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    const text = Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
      : (typeof detail === "string" ? detail : JSON.stringify(detail));
    super(text || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body, headers = {}) {
  const options = {method, credentials: "same-origin", headers: {"X-CSRF-Token": CSRF, ...headers}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  if (response.status === 401) {
    location.href = "/admin/login?next=" + encodeURIComponent("/admin" + location.hash);
    throw new ApiError(401, "signed out");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

function toast(message, bad = false) {
  const box = $("#toast");
  box.textContent = message;
  box.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = "toast"; }, 3500);
}

// Runs an action, shows its error where the user looks; returns its result or undefined.
async function attempt(action, okMessage) {
  try {
    const result = await action();
    if (okMessage) toast(okMessage);
    return result;
  } catch (error) {
    toast(`${t("error")}: ${error.message}`, true);
    return undefined;
  }
}

// ---- navigation and roles ---------------------------------------------------------

const PAGES = [
  {id: "dashboard", roles: ["admin", "operator", "manager"], render: dashboardPage},
  {id: "inbox", roles: ["admin", "operator", "manager", "rep"], render: inboxPage},
  {id: "contacts", roles: ["admin", "operator", "manager", "rep"], render: contactsPage},
  {id: "leads", roles: ["admin", "operator", "manager", "rep"], render: leadsPage},
  {id: "campaigns", roles: ["admin", "operator", "manager"], render: campaignsPage},
  {id: "channels", roles: ["admin", "operator"], render: channelsPage},
  {id: "faq", roles: ["admin", "operator"], render: faqPage},
  {id: "monitoring", roles: ["admin", "operator", "manager"], render: monitoringPage},
  {id: "users", roles: ["admin", "manager"], render: usersPage},
  {id: "settings", roles: ["admin", "manager"], render: settingsPage},
  {id: "audit", roles: ["admin"], render: auditPage},
  {id: "account", roles: ["admin", "operator", "manager", "rep"], render: accountPage, hidden: true},
];
let stopPage = () => {};
let routeSeq = 0;

function drawChrome() {
  $("#nav").innerHTML = PAGES.filter((p) => p.roles.includes(ME.role) && !p.hidden)
    .map((p) => `<a href="#/${p.id}" data-page="${p.id}">${esc(t(p.id))}</a>`).join("");
  $("#who").textContent = `${ME.display_name || ME.username} · ${ME.role}`;
  $("#logout").textContent = t("sign_out");
  const other = LANG === "zh" ? "en" : "zh";
  const switcher = $("#language-switch");
  switcher.textContent = t("other_language");
  switcher.href = `/admin/language/${other}?next=${encodeURIComponent("/admin")}`;
  switcher.onclick = (event) => {
    // Switch in place (the cookie is set by the hub for the next visit too).
    event.preventDefault();
    fetch(switcher.href, {credentials: "same-origin", redirect: "manual"}).finally(() => {
      LANG = other;
      document.documentElement.lang = other === "zh" ? "zh-CN" : "en";
      drawChrome();
      route();
    });
  };
}

async function route() {
  stopPage();
  stopPage = () => {};
  const [, pageId = "", ...rest] = (location.hash || "#/").split("/");
  const allowed = PAGES.filter((p) => p.roles.includes(ME.role));
  const page = PAGES.find((p) => p.id === pageId) || allowed[0];
  $$("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page.id));
  $("#nav").classList.remove("open");
  // Each visit renders into its own section: a slower earlier page that finishes late
  // writes into a section no longer shown, and its timers are stopped at once.
  const seq = ++routeSeq;
  const main = document.createElement("section");
  $("#main").replaceChildren(main);
  if (!page.roles.includes(ME.role)) {
    main.innerHTML = `<div class="card refused" id="refused">${esc(t("refused"))}</div>`;
    return;
  }
  main.innerHTML = `<p class="muted">${esc(t("loading"))}</p>`;
  try {
    const stop = await page.render(main, rest);
    if (typeof stop === "function") {
      if (seq === routeSeq) stopPage = stop;
      else stop();
    }
  } catch (error) {
    main.innerHTML = error.status === 403 ? `<div class="card refused" id="refused">${esc(t("refused"))}</div>`
      : `<div class="card error">${esc(t("error"))}: ${esc(error.message)}</div>`;
  }
}

// ---- dashboard --------------------------------------------------------------------

const DASHBOARD_RANGES = [7, 14, 30, 90];

async function dashboardPage(main, rest) {
  const days = DASHBOARD_RANGES.includes(Number(rest[0])) ? Number(rest[0]) : 14;
  const d = await api("GET", `/dashboard?days=${days}`);
  const marks = d.alerts.map((a) => ({index: d.days.indexOf(a.day), label: `${a.dimension} ${a.key}`})).filter((m) => m.index >= 0);
  const campaigns = d.campaigns.length ? `<div class="table-wrap"><table><tr><th>${esc(t("campaigns"))}</th><th>${esc(t("status"))}</th>
      ${["enrolled", "sent", "delivered", "replied", "opted_out", "converted"].map((k) => `<th>${esc(t(k))}</th>`).join("")}</tr>
      ${d.campaigns.map((c) => `<tr><td><a href="#/campaigns/${c.id}">${esc(c.name)}</a></td><td><span class="badge">${esc(c.status)}</span></td>
      ${["enrolled", "sent", "delivered", "replied", "opted_out", "converted"].map((k) => `<td>${esc(c[k] ?? "")}</td>`).join("")}</tr>`).join("")}
      </table></div>` : `<p class="muted">${esc(t("nothing"))}</p>`;
  const total = Object.values(d.messages_by_channel).flat().reduce((a, b) => a + b, 0);
  const scored = d.sentiment.reduce((a, x) => a + x.messages, 0), negative = d.sentiment.reduce((a, x) => a + x.negative, 0);
  main.innerHTML = `<h1>${esc(t("dashboard"))}</h1>
    <div class="toolbar row"><select id="dashboard-range" aria-label="${esc(t("range"))}">${DASHBOARD_RANGES.map((n) => `<option value="${n}"${n === days ? " selected" : ""}>${esc(t("last_days", {n}))}</option>`).join("")}</select></div>
    <div class="tiles" id="dashboard-tiles"><div class="tile"><strong>${total}</strong><span>${esc(t("tile_messages"))}</span></div>
      <div class="tile"><strong>${d.funnel.reduce((a, f) => a + f.count, 0)}</strong><span>${esc(t("tile_leads"))}</span></div>
      <div class="tile"><strong>${scored ? Math.round(negative / scored * 100) + "%" : "–"}</strong><span>${esc(t("tile_negative"))}</span></div>
      <div class="tile"><strong>${d.alerts.length}</strong><span>${esc(t("tile_alerts"))}</span></div></div>
    <div class="grid">
      <section class="card" id="chart-messages"><h3>${esc(t("messages_per_day"))}</h3>${Charts.stackedBars(d.days, d.messages_by_channel, t("messages_per_day"))}</section>
      <section class="card" id="chart-funnel"><h3>${esc(t("funnel"))}</h3>${Charts.funnel(d.funnel, t("funnel"))}</section>
      <section class="card" id="chart-response"><h3>${esc(t("response_times"))}</h3>${Charts.lines(d.days, {
        [t("bot")]: d.response_times.map((r) => r.bot_median_s), [t("person")]: d.response_times.map((r) => r.person_median_s)}, t("response_times"), [], "s")}</section>
      <section class="card" id="chart-sentiment"><h3>${esc(t("sentiment_trend"))}</h3>${Charts.lines(d.days, {
        [t("negative")]: d.sentiment.map((s) => s.negative_share)}, t("sentiment_trend"), marks, "%")}</section>
    </div>
    <section class="card"><h3>${esc(t("campaign_results"))}</h3>${campaigns}</section>`;
  $("#dashboard-range", main).onchange = (event) => { location.hash = `#/dashboard/${event.target.value}`; };
}

// ---- inbox ------------------------------------------------------------------------

const UNSETTLED = new Set(["queued", "sending"]);
const DELIVERY_FAILED = new Set(["failed", "unreachable", "cancelled"]);

// Under an outgoing message: where it is, with the platform's reason when it did not go.
function deliveryLine(d) {
  if (!d) return "";
  const detail = d.detail && d.state !== "delivered" && d.state !== "sent" ? `: ${d.detail}` : "";
  const next = d.state === "queued" && d.next_attempt_at ? ` (${t("d_next", {at: when(d.next_attempt_at)})})` : "";
  const mark = d.state === "delivered" || d.state === "sent" ? "✓ " : DELIVERY_FAILED.has(d.state) ? "✗ " : "";
  const tone = DELIVERY_FAILED.has(d.state) ? " bad" : d.state === "delivered" || d.state === "sent" ? " ok" : "";
  return `<div class="delivery${tone}" data-state="${esc(d.state)}">${mark}${esc(t("d_" + d.state))}${esc(detail)}${esc(next)}</div>`;
}

async function inboxPage(main, rest) {
  const filters = {channel: "", owner: "", status: "", sentiment: "", q: ""};
  let selected = rest[0] ? Number(rest[0]) : null;
  let version = -1;
  const option = (value, label, current) => `<option value="${esc(value)}"${value === current ? " selected" : ""}>${esc(label)}</option>`;
  main.innerHTML = `<h1>${esc(t("inbox"))}</h1>
    <div class="toolbar" id="inbox-filters">
      <select name="channel" aria-label="${esc(t("channel"))}">${option("", `${t("channel")}: ${t("all")}`, "")}
        ${["telegram", "wechat", "wecom", "dingtalk", "email"].map((k) => option(k, k, "")).join("")}</select>
      <select name="owner" aria-label="${esc(t("owner"))}">${option("", `${t("owner")}: ${t("all")}`, "")}${option("me", t("me"), "")}${option("none", t("unowned"), "")}</select>
      <select name="status" aria-label="${esc(t("status"))}">${option("", `${t("status")}: ${t("all")}`, "")}
        ${["open", "waiting", "handoff", "closed"].map((k) => option(k, t(k), "")).join("")}</select>
      <select name="sentiment" aria-label="${esc(t("sentiment"))}">${option("", `${t("sentiment")}: ${t("all")}`, "")}
        ${["negative", "neutral", "positive"].map((k) => option(k, t(k), "")).join("")}</select>
      <input name="q" type="search" placeholder="${esc(t("search"))}">
    </div>
    <div class="inbox" id="inbox"><div class="inbox-list" id="inbox-list"></div><section class="thread" id="thread"><p class="muted" style="padding:14px">${esc(t("pick_conversation"))}</p></section></div>`;
  $$("#inbox-filters select, #inbox-filters input").forEach((el) => {
    el.addEventListener(el.tagName === "INPUT" ? "input" : "change", () => { filters[el.name] = el.value; version = -1; refresh(); });
  });
  let users = [], teams = [];
  if (ME.role === "admin" || ME.role === "manager") {
    [users, teams] = await Promise.all([api("GET", "/users").catch(() => []), api("GET", "/teams").catch(() => [])]);
    // Supervisors narrow the inbox to one person or one team as well.
    $("#inbox-filters select[name=owner]").insertAdjacentHTML("beforeend",
      teams.map((team) => option(`team:${team.id}`, `${t("team")}: ${team.name}`, "")).join("") +
      users.filter((u) => u.is_active && ["rep", "manager", "admin"].includes(u.role)).map((u) => option(String(u.id), u.display_name || u.username, "")).join(""));
  }

  async function refresh() {
    const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
    const page = await api("GET", "/inbox" + (query ? "?" + query : ""));
    if (!$("#inbox-list")) return;  // the user has gone to another page meanwhile
    if (page.version === version && $("#inbox-list").childElementCount) {
      if (selected && unsettled) await updateThread();
      return;
    }
    const changed = version !== -1 && page.version !== version;
    version = page.version;
    $("#inbox-list").innerHTML = page.rows.length ? page.rows.map((r) => `
      <div class="inbox-item${r.id === selected ? " active" : ""}" data-id="${r.id}">
        <div class="line1"><strong>${esc(r.name)}</strong><span class="muted">${esc(when(r.last_message_at))}</span></div>
        <div class="row"><span class="badge">${esc(r.channel)}</span>${r.waiting ? `<span class="badge waiting">${esc(t("waiting"))}</span>` : ""}
          ${r.sentiment === "negative" ? `<span class="badge negative">${esc(t("negative"))}</span>` : ""}<span class="muted">${esc(r.owner || t("unowned"))}</span></div>
        <div class="preview">${r.last_direction === "out" ? "↩ " : ""}${esc(r.last_text || "")}</div>
      </div>`).join("") : `<p class="muted" style="padding:12px">${esc(t("nothing"))}</p>`;
    $$("#inbox-list .inbox-item").forEach((item) => item.addEventListener("click", () => {
      selected = Number(item.dataset.id);
      history.replaceState(null, "", `#/inbox/${selected}`);
      $$("#inbox-list .inbox-item").forEach((i) => i.classList.toggle("active", i === item));
      openThread();
    }));
    if (selected && $("#thread").dataset.id !== String(selected)) openThread();
    else if (selected && changed) updateThread();
  }

  function threadItems(th) {
    return [...th.messages.map((m) => ({at: m.created_at, html: `<div class="msg ${m.direction === "out" ? "out" : "in"}">${esc(m.text)}<div class="meta">${esc(m.channel)} · ${esc(when(m.created_at))}${m.author ? " · " + esc(m.author) : (m.direction === "out" ? " · " + esc(t("bot")) : "")}${m.sentiment === "negative" ? " · ⚠" : ""}</div>${deliveryLine(m.delivery)}</div>`})),
      ...th.notes.map((n) => ({at: n.created_at, html: `<div class="note"><strong>${esc(t("note"))}:</strong> ${esc(n.text)}<div class="meta">${esc(n.author || "")} · ${esc(when(n.created_at))}</div></div>`}))]
      .sort((a, b) => a.at.localeCompare(b.at)).map((i) => i.html).join("") || `<p class="muted">${esc(t("nothing"))}</p>`;
  }

  // A reply still on its way: the thread is read again until every one has settled.
  let unsettled = false;
  const settling = (th) => { unsettled = th.messages.some((m) => m.delivery && UNSETTLED.has(m.delivery.state)); };

  // New messages and notes only: what the user is typing stays where it is.
  async function updateThread() {
    const th = await api("GET", `/inbox/${selected}`);
    const list = $("#messages");
    if (!list || $("#thread").dataset.id !== String(th.conversation.id)) return;
    settling(th);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.innerHTML = threadItems(th);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  async function openThread() {
    const th = await api("GET", `/inbox/${selected}`);
    const box = $("#thread");
    if (!box) return;
    settling(th);
    $("#inbox").classList.add("has-thread");
    const c = th.conversation;
    const assign = users.length ? `<select id="assign-to" aria-label="${esc(t("assign"))}">
        ${option("", t("queue"), c.owner_id ? "" : "")}${users.filter((u) => u.is_active && ["rep", "manager", "admin"].includes(u.role))
        .map((u) => option(String(u.id), u.display_name || u.username, String(c.owner_id || ""))).join("")}</select>
        <button id="assign" type="button">${esc(t("assign"))}</button>` : "";
    box.dataset.id = String(c.id);
    box.innerHTML = `<div class="thread-head"><div class="row"><button type="button" class="link" id="back-to-list" aria-label="back">←</button>
        <strong>${esc(c.name)}</strong><span class="badge">${esc(c.channel)} · ${esc(c.account)}</span>
        <a href="#/contacts/${c.contact_id}">${esc(t("contacts"))} #${c.contact_id}</a><span class="muted">${esc(t("owner"))}: ${esc(c.owner || t("unowned"))}</span></div>
        <div class="row" style="margin-top:6px">${assign}</div></div>
      <div class="messages" id="messages">${threadItems(th)}</div>
      ${th.may_act ? `<form class="composer" id="reply-form"><textarea name="text" required placeholder="${esc(t("reply_placeholder"))}" aria-label="${esc(t("reply"))}"></textarea>
        <div class="row"><button class="primary" type="submit" id="send-reply">${esc(t("send"))}</button>
          <label class="row" style="margin:0">${esc(t("reply_on"))}<select name="on" id="reply-on">${th.conversations.map((x) => option(String(x.id), `${x.channel} · ${x.account}`, String(c.id))).join("")}</select></label></div></form>
      <form class="composer" id="note-form"><textarea name="text" required placeholder="${esc(t("note_placeholder"))}" aria-label="${esc(t("note"))}"></textarea>
        <div class="row"><button type="submit">${esc(t("add_note"))}</button></div></form>` : ""}`;
    const list = $("#messages");
    list.scrollTop = list.scrollHeight;
    $("#back-to-list").onclick = () => { $("#inbox").classList.remove("has-thread"); };
    const replyForm = $("#reply-form");
    if (replyForm) replyForm.onsubmit = async (event) => {
      event.preventDefault();
      const text = replyForm.text.value.trim();
      if (!text) return;
      const button = $("#send-reply");
      button.disabled = true;
      // A double click or a retry is one send.
      const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
      const on = Number(replyForm.elements.on.value) || c.id;
      const ok = await attempt(() => api("POST", `/conversations/${on}/messages`, {text}, {"Idempotency-Key": key}), t("sent_ok"));
      button.disabled = false;
      if (ok) { replyForm.text.value = ""; await refresh(); updateThread(); }
    };
    const noteForm = $("#note-form");
    if (noteForm) noteForm.onsubmit = async (event) => {
      event.preventDefault();
      const text = noteForm.text.value.trim();
      if (text && await attempt(() => api("POST", `/conversations/${c.id}/notes`, {text}), t("note_ok"))) {
        noteForm.text.value = "";
        updateThread();
      }
    };
    const assignButton = $("#assign");
    if (assignButton) assignButton.onclick = async () => {
      const value = $("#assign-to").value;
      if (await attempt(() => api("POST", `/conversations/${c.id}/assign`, {user_id: value ? Number(value) : null}), t("assigned_ok")) !== undefined) {
        version = -1; await refresh(); openThread();
      }
    };
  }

  await refresh();
  // Live: new messages and changes appear without a reload.
  const timer = setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, 3000);
  return () => clearInterval(timer);
}

// ---- contacts and leads --------------------------------------------------------------

async function contactsPage(main, rest) {
  if (rest[0]) return contactPage(main, Number(rest[0]));
  const fresh = newestOnly();
  const draw = async (q) => {
    const rows = await fresh(api("GET", "/contacts?limit=100" + (q ? "&q=" + encodeURIComponent(q) : "")));
    if (rows === undefined || !$("#contact-rows")) return;  // a newer search, or another page meanwhile
    $("#contact-rows").innerHTML = rows.length ? rows.map((c) => `<tr class="clickable" data-id="${c.id}"><td>#${c.id}</td><td>${esc(c.display_name || "")}</td>
      <td><span class="badge">${esc(c.stage)}</span></td><td>${esc(c.source || "")}</td><td>${esc(c.language || "")}</td><td>${esc(when(c.created_at))}</td></tr>`).join("")
      : `<tr><td colspan="6" class="muted">${esc(t("nothing"))}</td></tr>`;
    $$("#contact-rows tr.clickable").forEach((tr) => tr.addEventListener("click", () => { location.hash = `#/contacts/${tr.dataset.id}`; }));
  };
  main.innerHTML = `<h1>${esc(t("contacts"))}</h1><div class="toolbar"><input type="search" id="contact-search" placeholder="${esc(t("search"))}"></div>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>${esc(t("name"))}</th><th>${esc(t("stage"))}</th><th>${esc(t("source"))}</th><th>${esc(t("language"))}</th><th>${esc(t("created"))}</th></tr></thead>
    <tbody id="contact-rows"></tbody></table></div>`;
  let pending;
  $("#contact-search").addEventListener("input", (e) => { clearTimeout(pending); pending = setTimeout(() => draw(e.target.value.trim()), 250); });
  await draw("");
}

async function contactPage(main, id) {
  const contact = await api("GET", `/contacts/${id}`);
  const conversations = await api("GET", `/conversations?contact_id=${id}`);
  const consent = await api("GET", `/contacts/${id}/consent`).catch(() => null);
  const leads = await api("GET", `/leads?contact_id=${id}`).catch(() => []);
  const thread = conversations.length ? await api("GET", `/inbox/${conversations[0].id}`) : null;
  const mayErase = ME.role === "admin";
  main.innerHTML = `<h1>${esc(contact.display_name || "#" + contact.id)} <span class="badge">${esc(contact.stage)}</span></h1>
    <div class="grid">
      <section class="card"><dl class="kv"><dt>#</dt><dd>${contact.id}</dd><dt>${esc(t("source"))}</dt><dd>${esc(contact.source || "")}</dd>
        <dt>${esc(t("language"))}</dt><dd>${esc(contact.language || "")}</dd><dt>${esc(t("owner"))}</dt><dd>${esc(thread ? thread.conversation.owner || t("unowned") : "")}</dd>
        <dt>${esc(t("created"))}</dt><dd>${esc(when(contact.created_at))}</dd>
        <dt>${esc(t("phones"))}</dt><dd id="contact-phones">${esc(contact.phones.join(", "))}</dd><dt>${esc(t("emails"))}</dt><dd id="contact-emails">${esc(contact.emails.join(", "))}</dd></dl>
        <form id="tags-form" class="row" style="margin-top:12px"><label style="margin:0;flex:1">${esc(t("tags"))}<input name="tags" value="${esc(contact.tags.join(", "))}"></label>
          <button type="submit">${esc(t("save"))}</button></form>
        <div class="row" style="margin-top:12px"><a class="button" href="/api/v1/contacts/${id}/export" download="contact-${id}.json" id="export">${esc(t("export"))}</a>
        ${mayErase ? `<button class="danger" type="button" id="erase">${esc(t("erase"))}</button>` : ""}</div>
        ${["admin", "operator", "manager"].includes(ME.role) ? `<form id="merge-form" class="row" style="margin-top:14px">
          <label style="margin:0">${esc(t("merge_into_this"))}<input name="source" type="number" min="1" placeholder="#"></label>
          <button type="submit">${esc(t("preview"))}</button></form><div id="merge-preview"></div>` : ""}</section>
      <section class="card"><h3>${esc(t("identities"))}</h3><ul>${contact.identities.map((i) => `<li>${esc(i.display_name || i.username || i.external_id)}
        <span class="muted">· #${i.channel_account_id} · ${esc(i.external_id)}</span>${i.reachable ? "" : ` <span class="badge bad">${esc(i.unreachable_reason || "unreachable")}</span>`}</li>`).join("")}</ul>
        <h3>${esc(t("leads"))}</h3>${leads.length ? leads.map((l) => `<div>#${l.id} <span class="badge">${esc(l.stage)}</span> ${esc(t("score"))} ${l.score} · ${esc(l.company || "")}</div>`).join("") : `<p class="muted">${esc(t("nothing"))}</p>`}</section>
    </div>
    <section class="card" id="consent-card"><h3>${esc(t("consent"))}</h3>
      ${consent ? `<div id="consent-state">${Object.entries(consent.state).map(([purpose, scopes]) => `<div><strong>${esc(t("purpose_" + purpose))}</strong>: ${Object.entries(scopes).map(([scope, st]) =>
        `<span class="badge ${st.granted ? "good" : "bad"}">${esc(scope === "*" ? t("every_channel") : scope)} · ${esc(t(st.granted ? "granted" : "withdrawn"))}</span> <span class="muted">${esc(when(st.since))}</span>`).join(" ")}</div>`).join("")
        || `<p class="muted">${esc(t("consent_none"))}</p>`}
        ${consent.awaiting_confirmation.map((r) => `<div class="muted">${esc(t("awaiting_confirmation", {purpose: t("purpose_" + r.purpose), until: when(r.expires_at)}))}</div>`).join("")}</div>` : ""}
      ${consent && consent.events.length ? `<div class="table-wrap"><table><tr><th>${esc(t("when"))}</th><th></th><th>${esc(t("channel"))}</th><th>${esc(t("source"))}</th><th>${esc(t("proof"))}</th></tr>
      ${consent.events.map((e) => `<tr><td>${esc(when(e.at))}</td><td><span class="badge ${e.granted ? "good" : "bad"}">${esc(t(e.granted ? "granted" : "withdrawn"))}</span> ${esc(t("purpose_" + e.purpose))}</td>
      <td>${esc(e.channel || "*")}</td><td>${esc(e.source)}${e.actor ? " · " + esc(e.actor) : ""}</td><td class="details">${esc(detailsText(e.evidence))}</td></tr>`).join("")}</table></div>`
      : ""}
      ${["admin", "operator", "manager"].includes(ME.role) ? `<form id="consent-form" class="step-grid" style="margin-top:12px">
        <label>${esc(t("purpose"))}<select name="purpose"><option value="marketing">${esc(t("purpose_marketing"))}</option><option value="service">${esc(t("purpose_service"))}</option></select></label>
        <label>${esc(t("consent"))}<select name="granted"><option value="false">${esc(t("withdrawn"))}</option><option value="true">${esc(t("granted"))}</option></select></label>
        <label>${esc(t("channel"))}<select name="channel"><option value="">${esc(t("every_channel"))}</option>${CHANNEL_KINDS.map((k) => `<option>${k}</option>`).join("")}</select></label>
        <label>${esc(t("consent_note"))}<input name="note" required maxlength="500" placeholder="${esc(t("consent_note_hint"))}"></label>
        <label class="row"><input type="checkbox" name="double_opt_in" style="width:auto"> ${esc(t("double_opt_in"))}</label>
        <button type="submit" id="record-consent">${esc(t("record_consent"))}</button></form>` : ""}</section>
    <section class="card"><h3>${esc(t("timeline"))}</h3><div class="messages" style="max-height:none">${thread ? thread.messages.map((m) => `<div class="msg ${m.direction === "out" ? "out" : "in"}">${esc(m.text)}<div class="meta">${esc(m.channel)} · ${esc(when(m.created_at))}</div>${deliveryLine(m.delivery)}</div>`).join("") : ""}</div></section>`;
  $("#tags-form", main).onsubmit = async (event) => {
    event.preventDefault();
    const tags = commaList(event.target.tags.value);
    await attempt(() => api("PUT", `/contacts/${id}/tags`, {tags}), t("saved"));
  };
  const consentForm = $("#consent-form", main);
  if (consentForm) consentForm.onsubmit = async (event) => {
    event.preventDefault();
    const f = consentForm.elements;
    if (!f.note.value.trim()) { toast(`${t("error")}: ${t("consent_note")}`, true); return f.note.focus(); }
    const body = {purpose: f.purpose.value, granted: f.granted.value === "true", channel: f.channel.value || null,
      note: f.note.value.trim(), double_opt_in: f.double_opt_in.checked && f.granted.value === "true"};
    if (await attempt(() => api("POST", `/contacts/${id}/consent`, body), t("saved")) !== undefined) route();
  };
  const erase = $("#erase");
  if (erase) erase.onclick = async () => {
    if (prompt(t("erase_confirm")) !== "ERASE") return;
    if (await attempt(() => api("POST", `/contacts/${id}/erase`, {confirm_contact_id: id}), t("erased")) !== undefined) location.hash = "#/contacts";
  };
  const mergeForm = $("#merge-form");
  if (mergeForm) {
    mergeForm.onsubmit = async (event) => {
      event.preventDefault();
      const source = Number(mergeForm.source.value);
      if (!source) return;
      const plan = await attempt(() => api("GET", `/contacts/${id}/merge?source_contact_id=${source}`));
      if (!plan) return;
      const moves = Object.entries(plan.moves).filter(([, n]) => n).map(([k, n]) => `<li>${esc(t("merge_" + k))}: ${n}</li>`).join("");
      $("#merge-preview").innerHTML = `<h3>${esc(t("merge_preview", {source: plan.source.display_name || "#" + source, target: contact.display_name || "#" + id}))}</h3>
        <ul id="merge-moves">${moves || `<li class="muted">${esc(t("nothing"))}</li>`}</ul>
        ${plan.conflicts.length ? `<p><strong>${esc(t("merge_conflicts"))}</strong></p><ul id="merge-conflicts">${plan.conflicts.map((c) => `<li>${esc(c)}</li>`).join("")}</ul>` : ""}
        <p class="muted">${esc(t("merge_result"))}: ${esc(plan.result.display_name || "")} · ${esc(plan.result.language || "")} · ${esc((plan.result.tags || []).join(", "))}</p>
        <button type="button" class="primary" id="confirm-merge">${esc(t("merge"))}</button>`;
      $("#confirm-merge").onclick = async () => {
        if (await attempt(() => api("POST", `/contacts/${id}/merge`, {source_contact_id: source}), t("merged")) !== undefined) route();
      };
    };
  }
}

async function leadsPage(main) {
  const supervisor = ["admin", "manager"].includes(ME.role);
  const [{stages}, owners] = await Promise.all([api("GET", "/leads/pipeline"), supervisor ? api("GET", "/users") : []]);
  const importer = ["admin", "operator"].includes(ME.role);
  main.innerHTML = `<h1>${esc(t("leads"))}</h1>
    ${importer ? `<form class="card" id="import-form"><h2>${esc(t("import_leads"))}</h2>
      <p class="hint">${esc(t("import_hint"))}</p>
      <div class="row"><input type="file" name="file" accept=".csv,.xlsx,.xlsm" required aria-label="${esc(t("import_leads"))}">
      <button type="submit" class="primary" id="start-import">${esc(t("import"))}</button></div>
      <div id="import-progress" hidden><progress max="1" value="0" style="width:100%"></progress><div class="muted" id="import-count"></div></div>
      <div id="import-report"></div></form>` : ""}
    <div class="toolbar row" id="lead-filters">
      <select name="status" aria-label="${esc(t("status"))}"><option value="open">${esc(t("status_open"))}</option><option value="closed">${esc(t("status_closed"))}</option><option value="">${esc(t("all_statuses"))}</option></select>
      <select name="stage" aria-label="${esc(t("stage"))}"><option value="">${esc(t("all_stages"))}</option>${stages.map((s) => `<option>${esc(s)}</option>`).join("")}</select>
      ${supervisor ? `<select name="owner" aria-label="${esc(t("owner"))}"><option value="">${esc(t("all_owners"))}</option>${owners.filter((u) => u.is_active).map((u) => `<option value="${u.id}">${esc(u.display_name || u.username)}</option>`).join("")}</select>` : ""}
      <input type="search" name="q" placeholder="${esc(t("search"))}" aria-label="${esc(t("search"))}">
      <a class="button" id="export-leads" href="#">${esc(t("export_csv"))}</a></div>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>${esc(t("name"))}</th><th>${esc(t("company"))}</th><th>${esc(t("stage"))}</th>
    <th>${esc(t("score"))}</th><th>${esc(t("segment"))}</th><th>${esc(t("owner"))}</th><th>${esc(t("source"))}</th></tr></thead>
    <tbody id="lead-rows"></tbody></table></div>`;
  const filters = $("#lead-filters", main);
  const query = () => {
    const params = new URLSearchParams();
    for (const name of ["status", "stage", "owner", "q"]) {
      const el = filters.querySelector(`[name=${name}]`);
      if (el && el.value.trim()) params.set(name === "owner" ? "owner_user_id" : name, el.value.trim());
    }
    return params;
  };
  const drawLeads = (rows) => {
    $("#lead-rows", main).innerHTML = rows.map((l) => `<tr><td>${l.id}</td><td><a href="#/contacts/${l.contact_id}">${esc(l.contact_name || "#" + l.contact_id)}</a></td><td>${esc(l.company || "")}</td>
      <td><select class="lead-stage" data-lead="${l.id}" aria-label="${esc(t("stage"))}"${l.status === "open" ? "" : " disabled"}>${(stages.includes(l.stage) ? stages : [l.stage, ...stages]).map((s) => `<option${s === l.stage ? " selected" : ""}>${esc(s)}</option>`).join("")}</select></td><td>${l.score}</td>
      <td>${esc(l.segment)}</td><td>${esc(l.owner_name || t("unowned"))}</td><td>${esc(l.source || l.source_kind)}</td></tr>`).join("")
      || `<tr><td colspan="8" class="muted">${esc(t("nothing"))}</td></tr>`;
    $$(".lead-stage", main).forEach((select) => select.onchange = async () => {
      await attempt(() => api("POST", `/leads/${select.dataset.lead}/stage`, {stage: select.value}), t("stage_moved"));
      await refresh();  // won or lost closes the lead; a refusal puts the old stage back
    });
  };
  const fresh = newestOnly();
  const refresh = async () => {
    const params = query();
    params.set("limit", "200");
    const rows = await fresh(api("GET", `/leads?${params}`));
    if (rows === undefined) return;  // a newer filter's answer wins
    drawLeads(rows);
    const exported = query();
    exported.set("language", LANG);
    $("#export-leads", main).href = `/api/v1/leads/export?${exported}`;
  };
  filters.querySelectorAll("select").forEach((el) => el.onchange = refresh);
  let typing;
  filters.querySelector("[name=q]").oninput = () => { clearTimeout(typing); typing = setTimeout(refresh, 300); };
  await refresh();
  const form = $("#import-form");
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const file = form.file.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file);
    const button = $("#start-import");
    button.disabled = true;
    $("#import-progress").hidden = false;
    $("#import-report").innerHTML = "";
    try {
      const response = await fetch("/api/v1/leads/import?stream=true", {method: "POST", body, credentials: "same-origin",
                                                                         headers: {"X-CSRF-Token": CSRF}});
      if (!response.ok) throw new ApiError(response.status, (await response.json().catch(() => ({}))).detail);
      // One JSON line per chunk of rows, then the report.
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {done, value} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 1);
          if (line.error) throw new Error(line.error);
          if (line.total !== undefined) {
            $("#import-progress progress").max = Math.max(1, line.total);
            $("#import-progress progress").value = line.rows;
            $("#import-count").textContent = t("import_rows", {n: line.rows, total: line.total});
          }
          if (line.report) {
            showImportReport(line.report);
            await refresh();
          }
        }
      }
    } catch (error) {
      toast(`${t("error")}: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  };
}

function showImportReport(report) {
  const box = $("#import-report");
  const rejected = report.rejected_rows;
  box.innerHTML = `<dl class="kv" id="import-summary">${["rows", "contacts_created", "contacts_matched", "leads_opened", "leads_existing", "marketing_consents", "rejected"]
      .map((k) => `<dt>${esc(t({rows: "import_rows_label", rejected: "import_rejected_count"}[k] || "import_" + k))}</dt><dd data-key="${k}">${esc(report[k])}</dd>`).join("")}</dl>
    ${rejected.length ? `<h3>${esc(t("import_rejected"))}</h3><div class="table-wrap"><table id="rejected-rows"><tr><th>#</th><th>${esc(t("reason"))}</th><th>${esc(t("details"))}</th></tr>
      ${rejected.map((r) => `<tr><td>${r.row}</td><td>${esc(r.reason)}</td><td>${esc(Object.values(r.values).filter(Boolean).join(" · "))}</td></tr>`).join("")}</table></div>
      <a class="button" id="rejected-download" download="rejected.csv">${esc(t("import_download"))}</a>` : ""}`;
  const link = $("#rejected-download");
  if (link) {
    const names = [...new Set(rejected.flatMap((r) => Object.keys(r.values)))];
    const cell = (v) => `"${String(v ?? "").replace(/"/g, '""')}"`;
    const csv = [["row", "reason", ...names].map(cell).join(","),
                 ...rejected.map((r) => [r.row, r.reason, ...names.map((n) => r.values[n])].map(cell).join(","))].join("\r\n");
    link.href = URL.createObjectURL(new Blob(["\ufeff" + csv], {type: "text/csv"}));
  }
}

// ---- campaigns ------------------------------------------------------------------------

async function campaignsPage(main, rest) {
  if (rest[0] === "new") return campaignBuilder(main);
  if (rest[0] && rest[1] === "edit") return campaignBuilder(main, await api("GET", `/campaigns/${Number(rest[0])}`));
  if (rest[0]) return campaignResults(main, Number(rest[0]));
  const campaigns = await api("GET", "/campaigns");
  const builder = ["admin", "operator"].includes(ME.role);
  main.innerHTML = `<h1>${esc(t("campaigns"))}</h1>${builder ? `<div class="toolbar"><a class="button primary" href="#/campaigns/new" id="new-campaign">${esc(t("new_campaign"))}</a></div>` : ""}
    <div class="table-wrap"><table><tr><th>#</th><th>${esc(t("name"))}</th><th>${esc(t("status"))}</th><th>${esc(t("step"))}</th><th></th></tr>
    ${campaigns.map((c) => `<tr><td>${c.id}</td><td><a href="#/campaigns/${c.id}">${esc(c.name)}</a></td><td><span class="badge" data-status="${esc(c.status)}">${esc(c.status)}</span></td>
      <td>${c.steps.length}</td><td>${builder ? (c.status === "active" ? `<button type="button" data-pause="${c.id}">${esc(t("pause"))}</button>`
      : (c.status === "draft" || c.status === "paused" ? `<button type="button" class="primary" data-start="${c.id}">${esc(t("start"))}</button>` : "")) : ""}</td></tr>`).join("")
    || `<tr><td colspan="5" class="muted">${esc(t("nothing"))}</td></tr>`}</table></div>`;
  $$("[data-start]").forEach((b) => b.onclick = async () => {
    if (await attempt(() => api("POST", `/campaigns/${b.dataset.start}/status`, {status: "active"}), t("started_ok")) !== undefined) route();
  });
  $$("[data-pause]").forEach((b) => b.onclick = async () => {
    if (await attempt(() => api("POST", `/campaigns/${b.dataset.pause}/status`, {status: "paused"}), t("paused_ok")) !== undefined) route();
  });
}

const CHANNEL_KINDS = ["telegram", "wechat", "wecom", "dingtalk", "email"];
const capsText = (caps) => [caps.per_contact ? t("per_person", {n: caps.per_contact.messages, d: caps.per_contact.days}) : "",
  caps.per_day ? t("per_day", {n: caps.per_day}) : ""].filter(Boolean).join(" · ") || t("caps_none");

async function campaignResults(main, id) {
  const [campaign, results] = await Promise.all([api("GET", `/campaigns/${id}`), api("GET", `/campaigns/${id}/results`)]);
  const builder = ["admin", "operator"].includes(ME.role);
  const actions = !builder ? "" : [campaign.status === "active" ? ["paused", "pause"] : null,
    ["draft", "paused"].includes(campaign.status) ? ["active", "start"] : null,
    campaign.status !== "ended" ? ["ended", "end_campaign"] : null].filter(Boolean)
    .map(([status, label]) => `<button type="button" data-set-status="${status}"${status === "active" ? ' class="primary"' : ""}>${esc(t(label))}</button>`).join("")
    + (campaign.status === "draft" ? `<a class="button" id="edit-campaign" href="#/campaigns/${id}/edit">${esc(t("edit"))}</a>` : "")
    + `<button type="button" id="copy-campaign">${esc(t("copy_campaign"))}</button>`;
  const stepText = (step) => [step.channel || t("any_channel"), step.delay_minutes ? t("after_minutes", {n: step.delay_minutes}) : "",
    step.window_start ? `${step.window_start}-${step.window_end}` : "", step.condition ? JSON.stringify(step.condition) : ""].filter(Boolean).join(" · ");
  main.innerHTML = `<h1>${esc(campaign.name)} <span class="badge" id="campaign-status" data-status="${esc(campaign.status)}">${esc(campaign.status)}</span></h1>
    <div class="toolbar row">${actions}</div>
    <p class="muted" id="campaign-caps">${esc(t("caps"))}: ${esc(capsText(campaign.caps))}</p>
    <section class="card"><h3>${esc(t("results"))}</h3><dl class="kv">${["enrolled", "sent", "delivered", "replied", "opted_out", "converted"]
      .map((k) => `<dt>${esc(t(k))}</dt><dd>${esc(results[k])}</dd>`).join("")}</dl></section>
    <div class="table-wrap"><table><tr><th>${esc(t("step"))}</th><th>${esc(t("name"))}</th><th></th>${["sent", "delivered", "replied", "opted_out", "converted"].map((k) => `<th>${esc(t(k))}</th>`).join("")}</tr>
    ${results.steps.map((r) => { const step = campaign.steps.find((x) => x.position === r.position) || {};
      return `<tr><td>${r.position}</td><td>${esc(r.name)}<div class="hint">${esc(Object.values(step.template || {})[0] || "")}</div></td><td class="muted">${esc(stepText(step))}${Object.keys(step.channel_templates || {}).length ? ` · ${esc(t("worded_for", {kinds: Object.keys(step.channel_templates).join(", ")}))}` : ""}</td>${["sent", "delivered", "replied", "opted_out", "converted"].map((k) => `<td>${esc(r[k])}</td>`).join("")}</tr>`; }).join("")}</table></div>
    <h2>${esc(t("enrolments"))}</h2>
    <div class="toolbar row"><select id="enrolment-status" aria-label="${esc(t("status"))}"><option value="">${esc(t("all"))}</option>${["active", "completed", "exited"].map((x) => `<option value="${x}">${esc(t("enrolment_" + x))}</option>`).join("")}</select></div>
    <div class="table-wrap"><table><thead><tr><th>${esc(t("contacts"))}</th><th>${esc(t("status"))}</th><th>${esc(t("next_step"))}</th><th>${esc(t("due"))}</th><th>${esc(t("note"))}</th></tr></thead><tbody id="enrolment-rows"></tbody></table></div>
    <button type="button" id="enrolments-more" hidden>${esc(t("more"))}</button>`;
  const copyButton = $("#copy-campaign", main);
  if (copyButton) copyButton.onclick = async () => {
    const copied = await attempt(() => api("POST", `/campaigns/${id}/copy`), t("created_ok"));
    if (copied) location.hash = `#/campaigns/${copied.id}/edit`;
  };
  $$("[data-set-status]", main).forEach((b) => b.onclick = async () => {
    if (b.dataset.setStatus === "ended" && !confirm(t("end_confirm", {name: campaign.name}))) return;
    if (await attempt(() => api("POST", `/campaigns/${id}/status`, {status: b.dataset.setStatus}), t("saved")) !== undefined) route();
  });
  let offset = 0;
  const fresh = newestOnly();
  const load = async (more) => {
    const status = $("#enrolment-status", main).value;
    offset = more ? offset : 0;
    const rows = await fresh(api("GET", `/campaigns/${id}/enrolments?limit=100&offset=${offset}${status ? `&status=${status}` : ""}`));
    if (rows === undefined) return;
    offset += rows.length;
    const html = rows.map((e) => `<tr><td><a href="#/contacts/${e.contact_id}">#${e.contact_id}</a></td><td><span class="badge">${esc(t("enrolment_" + e.status))}</span>${e.exit_reason ? ` <span class="muted">${esc(e.exit_reason)}</span>` : ""}</td>
      <td>${esc(e.next_position ?? "")}</td><td>${esc(when(e.next_due_at))}</td><td class="muted">${esc(e.note || "")}</td></tr>`).join("");
    if (more) $("#enrolment-rows", main).insertAdjacentHTML("beforeend", html);
    else $("#enrolment-rows", main).innerHTML = html || `<tr><td colspan="5" class="muted">${esc(t("nothing"))}</td></tr>`;
    $("#enrolments-more", main).hidden = rows.length < 100;
  };
  $("#enrolment-status", main).onchange = () => load(false);
  $("#enrolments-more", main).onclick = () => load(true);
  await load(false);
}

// A new campaign, or a draft to change (`draft`, as the API reads it).
function campaignBuilder(main, draft = null) {
  main.innerHTML = `<h1>${esc(draft ? t("edit_user", {name: draft.name}) : t("new_campaign"))}</h1>
    <form id="campaign-form" class="card" novalidate>
      <label>${esc(t("name"))}<input name="name" required maxlength="200"></label>
      <h3>${esc(t("audience"))}</h3>
      <div class="step-grid"><label>${esc(t("tags"))}<input name="tags"></label><label>${esc(t("stages"))}<input name="stages"></label>
        <label>${esc(t("channels_filter"))}<input name="channels"></label><label>${esc(t("min_score"))}<input name="min_score" type="number" min="0"></label></div>
      <label class="row"><input type="checkbox" name="consent" checked style="width:auto"> ${esc(t("consent_only"))}</label>
      <h3>${esc(t("step"))}</h3><div id="steps"></div>
      <button type="button" id="add-step">${esc(t("add_step"))}</button>
      <h3>${esc(t("caps"))}</h3><div class="step-grid">
        <label>${esc(t("cap_messages"))}<input name="cap_messages" type="number" min="1" max="1000"></label>
        <label>${esc(t("cap_days"))}<input name="cap_days" type="number" min="0.1" max="365" step="any"></label>
        <label>${esc(t("cap_per_day"))}<input name="cap_per_day" type="number" min="1"></label></div>
      <div class="hint">${esc(t("caps_hint"))}</div>
      <h3>${esc(t("exits"))}</h3><div class="row"><label class="row"><input type="checkbox" name="exit_reply" checked style="width:auto"> ${esc(t("exit_reply"))}</label>
        <label class="row"><input type="checkbox" name="exit_conversion" checked style="width:auto"> ${esc(t("exit_conversion"))}</label></div>
      <div class="row"><button type="button" id="preview">${esc(t("preview"))}</button><button type="submit" class="primary" id="create-campaign">${esc(t(draft ? "save" : "create_campaign"))}</button></div>
      <div id="preview-out" class="card" hidden></div>
    </form>`;
  const form = $("#campaign-form");
  const addStep = (initial = null) => {
    const n = $$("#steps .step").length + 1;
    const div = document.createElement("div");
    div.className = "step";
    div.innerHTML = `<div class="row"><strong>${esc(t("step"))} ${n}</strong><span class="spacer" style="flex:1"></span><button type="button" class="link remove-step">${esc(t("remove"))}</button></div>
      <div class="step-grid"><label>${esc(t("name"))}<input name="step_name" value="${esc(t("step"))} ${n}"></label>
        <label>${esc(t("channel"))}<select name="step_channel"><option value="">${esc(t("any_channel"))}</option>${CHANNEL_KINDS.map((k) => `<option>${k}</option>`).join("")}</select></label>
        <label>${esc(t("delay"))}<input name="delay" type="number" min="0" value="${n === 1 ? 0 : 1440}"></label>
        <label>${esc(t("window_start"))}<input name="window_start" placeholder="09:00" pattern="\\d{2}:\\d{2}"></label>
        <label>${esc(t("window_end"))}<input name="window_end" placeholder="18:00" pattern="\\d{2}:\\d{2}"></label>
        <label>${esc(t("delay_from"))}<select name="delay_from"><option value="previous">${esc(t("from_previous"))}</option><option value="enrolment">${esc(t("from_enrolment"))}</option></select></label>
        <label>${esc(t("condition"))}<select name="condition">${["", "not_replied", "replied", "clicked", "not_clicked", "stages", "tag"]
          .map((c) => `<option value="${c}">${esc(t(c ? "cond_" + c : "cond_none"))}</option>`).join("")}</select></label>
        <label class="cond-value" hidden>${esc(t("cond_value"))}<input name="condition_value"></label>
        <label class="cond-else" hidden>${esc(t("cond_else"))}<select name="else_position"></select></label></div>
      <label>${esc(t("template_zh"))}<textarea name="template_zh">{name}您好！</textarea></label>
      <label>${esc(t("template_en"))}<textarea name="template_en">Hi {name}!</textarea></label><div class="hint">${esc(t("variables"))}</div>
      <div class="channel-wordings"></div>
      <div class="row"><select class="wording-kind">${CHANNEL_KINDS.map((k) => `<option>${k}</option>`).join("")}</select>
        <button type="button" class="add-wording">${esc(t("add_channel_wording"))}</button></div>`;
    div.querySelector(".remove-step").onclick = () => { if ($$("#steps .step").length > 1) { div.remove(); renumber(); } };
    const condition = div.querySelector("[name=condition]");
    condition.onchange = () => {
      div.querySelector(".cond-value").hidden = !["stages", "tag"].includes(condition.value);
      div.querySelector(".cond-else").hidden = !condition.value;
      renumber();
    };
    div.querySelector(".add-wording").onclick = () => {
      const kind = div.querySelector(".wording-kind").value;
      if (div.querySelector(`.wording[data-kind="${kind}"]`)) return div.querySelector(`.wording[data-kind="${kind}"] textarea`).focus();
      const block = document.createElement("div");
      block.className = "wording";
      block.dataset.kind = kind;
      block.innerHTML = `<div class="row"><strong>${esc(t("channel_wording", {kind}))}</strong><span style="flex:1"></span><button type="button" class="link">${esc(t("remove"))}</button></div>
        <label>${esc(t("template_zh"))}<textarea name="wording_zh"></textarea></label><label>${esc(t("template_en"))}<textarea name="wording_en"></textarea></label>`;
      block.querySelector("button").onclick = () => block.remove();
      div.querySelector(".channel-wordings").appendChild(block);
      block.querySelector("textarea").focus();
    };
    $("#steps").appendChild(div);
    if (initial) fillStep(div, initial);
  };
  const fillStep = (div, step) => {
    const set = (name, value) => { div.querySelector(`[name="${name}"]`).value = value ?? ""; };
    set("step_name", step.name);
    set("step_channel", step.channel || "");
    set("delay", step.delay_minutes);
    set("window_start", step.window_start);
    set("window_end", step.window_end);
    set("delay_from", step.delay_from || "previous");
    set("template_zh", step.template.zh);
    set("template_en", step.template.en);
    const c = step.condition || {};
    const kind = "replied" in c ? (c.replied ? "replied" : "not_replied") : "clicked" in c ? (c.clicked ? "clicked" : "not_clicked")
      : c.stages ? "stages" : c.tag ? "tag" : "";
    set("condition", kind);
    set("condition_value", c.stages ? c.stages.join(", ") : (c.tag || ""));
    div.querySelector(".cond-value").hidden = !["stages", "tag"].includes(kind);
    div.querySelector(".cond-else").hidden = !kind;
    div.dataset.elsePosition = step.else_position || "";
    for (const [channel, worded] of Object.entries(step.channel_templates || {})) {
      div.querySelector(".wording-kind").value = channel;
      div.querySelector(".add-wording").click();
      const block = div.querySelector(`.wording[data-kind="${channel}"]`);
      block.querySelector("[name=wording_zh]").value = worded.zh || "";
      block.querySelector("[name=wording_en]").value = worded.en || "";
    }
  };
  // Where a step whose condition fails goes: a later step, or out of the campaign.
  const renumber = () => $$("#steps .step").forEach((div, i, all) => {
    const pick = div.querySelector("[name=else_position]"), chosen = pick.value || div.dataset.elsePosition || "";
    delete div.dataset.elsePosition;
    pick.innerHTML = `<option value="">${esc(t("cond_leave"))}</option>` + all.slice(i + 1)
      .map((_, k) => `<option value="${i + k + 2}"${String(i + k + 2) === chosen ? " selected" : ""}>${esc(t("go_to_step", {n: i + k + 2}))}</option>`).join("");
  });
  if (draft) {
    form.name.value = draft.name;
    const a = draft.audience;
    for (const key of ["tags", "stages", "channels"]) form[key].value = (a[key] || []).join(", ");
    form.min_score.value = a.min_score ?? "";
    form.consent.checked = a.consent !== false;
    form.cap_messages.value = draft.caps.per_contact?.messages ?? "";
    form.cap_days.value = draft.caps.per_contact?.days ?? "";
    form.cap_per_day.value = draft.caps.per_day ?? "";
    form.exit_reply.checked = draft.exits.includes("reply");
    form.exit_conversion.checked = draft.exits.includes("conversion");
    draft.steps.forEach((step) => addStep(step));
  } else {
    addStep();
  }
  renumber();
  $("#add-step").onclick = () => { addStep(); renumber(); };
  const collect = () => {
    const audience = {consent: form.consent.checked};
    for (const key of ["tags", "stages", "channels"]) if (commaList(form[key].value).length) audience[key] = commaList(form[key].value);
    if (form.min_score.value !== "") audience.min_score = Number(form.min_score.value);
    const steps = $$("#steps .step").map((div) => {
      const v = (name) => div.querySelector(`[name="${name}"]`).value.trim();
      const template = {};
      if (v("template_zh")) template.zh = v("template_zh");
      if (v("template_en")) template.en = v("template_en");
      const channel_templates = {};
      div.querySelectorAll(".wording").forEach((block) => {
        const worded = {};
        for (const lang of ["zh", "en"]) {
          const text = block.querySelector(`[name="wording_${lang}"]`).value.trim();
          if (text) worded[lang] = text;
        }
        if (Object.keys(worded).length) channel_templates[block.dataset.kind] = worded;
      });
      const step = {name: v("step_name") || t("step"), channel: v("step_channel") || null, template, channel_templates, delay_minutes: Number(v("delay") || 0)};
      if (v("window_start")) step.window_start = v("window_start");
      if (v("window_end")) step.window_end = v("window_end");
      step.delay_from = v("delay_from") || "previous";
      const cond = v("condition"), value = v("condition_value");
      if (cond === "replied" || cond === "not_replied") step.condition = {replied: cond === "replied"};
      if (cond === "clicked" || cond === "not_clicked") step.condition = {clicked: cond === "clicked"};
      if (cond === "stages") step.condition = {stages: commaList(value)};
      if (cond === "tag") step.condition = {tag: value};
      if (step.condition && v("else_position")) step.else_position = Number(v("else_position"));
      return step;
    });
    const exits = [];
    if (form.exit_reply.checked) exits.push("reply");
    if (form.exit_conversion.checked) exits.push("conversion");
    const caps = {};
    if (form.cap_messages.value !== "" || form.cap_days.value !== "") caps.per_contact = {messages: Number(form.cap_messages.value), days: Number(form.cap_days.value)};
    if (form.cap_per_day.value !== "") caps.per_day = Number(form.cap_per_day.value);
    return {name: form.name.value.trim(), audience, steps, exits, caps};
  };
  $("#preview").onclick = async () => {
    const body = collect();
    const result = await attempt(() => api("POST", "/campaigns/preview", {audience: body.audience, templates: body.steps.map((s) => s.template), channel_templates: body.steps.map((s) => s.channel_templates)}));
    if (!result) return;
    const out = $("#preview-out");
    out.hidden = false;
    out.innerHTML = `<strong id="audience-count">${esc(t(result.count === 1 ? "audience_count_one" : "audience_count", {n: result.count}))}</strong>
      <div class="muted">${result.sample.map((c) => esc(c.name || "#" + c.id)).join(", ")}</div>
      ${result.previews.map((p, i) => `<h3>${esc(t("step"))} ${i + 1}</h3>${Object.entries(p).map(([lang, text]) => `<div class="preview-box">${esc(lang)}: ${esc(text)}</div>`).join("")}`).join("")}`;
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = collect();
    if (!body.name) { toast(`${t("error")}: ${t("name")}`, true); form.name.focus(); return; }
    const saved = await attempt(() => (draft ? api("PUT", `/campaigns/${draft.id}`, body) : api("POST", "/campaigns", body)),
                                t(draft ? "saved" : "created_ok"));
    if (saved) location.hash = draft ? `#/campaigns/${draft.id}` : "#/campaigns";
  };
}

// ---- channels ---------------------------------------------------------------------

async function channelsPage(main) {
  const [accounts, kinds] = await Promise.all([api("GET", "/channel-accounts"), api("GET", "/channel-kinds")]);
  main.innerHTML = `<h1>${esc(t("channels"))}</h1>
    <div class="table-wrap"><table id="accounts-table"><tr><th>#</th><th>${esc(t("kind"))}</th><th>${esc(t("account_name"))}</th><th>${esc(t("webhook_url"))}</th><th></th></tr>
    ${accounts.map((a) => `<tr data-account="${a.id}"><td>${a.id}</td><td><span class="badge">${esc(a.kind)}</span>${a.is_active ? "" : ` <span class="badge bad">${esc(t("switched_off"))}</span>`}</td><td>${esc(a.name)}</td>
      <td><div class="copy-field"><input readonly value="${esc(a.webhook_url)}" aria-label="${esc(t("webhook_url"))}"><button type="button" class="copy">${esc(t("copy"))}</button></div></td>
      <td><div class="row actions"><button type="button" data-test="${a.id}">${esc(t("test_connection"))}</button><button type="button" data-edit-account="${a.id}">${esc(t("edit"))}</button>
        <button type="button" data-toggle="${a.id}">${esc(t(a.is_active ? "switch_off" : "switch_on"))}</button></div></td></tr>`).join("")
      || `<tr><td colspan="5" class="muted">${esc(t("nothing"))}</td></tr>`}</table></div>
    <div id="account-editor"></div>
    <form class="card" id="channel-form"><h2>${esc(t("add_channel"))}</h2>
      <label>${esc(t("kind"))}<select name="kind" id="channel-kind">${Object.keys(kinds).map((k) => `<option>${esc(k)}</option>`).join("")}</select></label>
      <label>${esc(t("account_name"))}<input name="name" required maxlength="200"></label>
      <div id="channel-fields"></div>
      <label>${esc(t("api_base"))}<input name="api_base" placeholder="https://…"></label>
      <p class="hint">${esc(t("secrets_note"))}</p>
      <div class="row"><button type="button" id="test-connection">${esc(t("test_connection"))}</button><button type="submit" class="primary" id="save-channel">${esc(t("save"))}</button></div>
      <div id="channel-result"></div></form>`;
  $$(".copy").forEach((b) => b.onclick = () => { const input = b.previousElementSibling; input.select(); navigator.clipboard?.writeText(input.value); toast(t("copied")); });
  const form = $("#channel-form");
  const fieldsFor = (kind) => {
    const schema = kinds[kind].credentials;
    const required = new Set(schema.required || []);
    return Object.entries(schema.properties || {}).map(([name, prop]) => {
      const secret = /secret|token|password|aes_key|app_secret/i.test(name);
      const type = prop.type === "integer" ? "number" : (secret ? "password" : "text");
      const options = prop.enum || (prop.anyOf || []).flatMap((a) => a.enum || []);
      const input = options.length ? `<select name="cred_${esc(name)}">${options.map((o) => `<option${o === prop.default ? " selected" : ""}>${esc(o)}</option>`).join("")}</select>`
        : `<input name="cred_${esc(name)}" type="${type}" autocomplete="off"${required.has(name) ? " required" : ""}${prop.default !== undefined && prop.default !== null ? ` value="${esc(prop.default)}"` : ""}>`;
      return `<label>${esc(prop.title || name)}${required.has(name) ? " *" : ""}${input}${prop.description ? `<span class="hint">${esc(prop.description)}</span>` : ""}</label>`;
    }).join("");
  };
  const byId = Object.fromEntries(accounts.map((a) => [a.id, a]));
  $$("[data-test]", main).forEach((b) => b.onclick = async () => {
    const result = await attempt(() => api("POST", `/channel-accounts/${b.dataset.test}/test`));
    if (result) toast(t("connection_ok", {name: result.display_name}));
  });
  $$("[data-toggle]", main).forEach((b) => b.onclick = async () => {
    const account = byId[Number(b.dataset.toggle)];
    if (account.is_active && !confirm(t("switch_off_confirm", {name: account.name}))) return;
    if (await attempt(() => api("PATCH", `/channel-accounts/${account.id}`, {is_active: !account.is_active}), t("saved"))) route();
  });
  $$("[data-edit-account]", main).forEach((b) => b.onclick = () => {
    const account = byId[Number(b.dataset.editAccount)];
    $("#account-editor", main).innerHTML = `<form class="card" id="account-form"><h2>${esc(t("edit_user", {name: account.name}))}</h2>
      <label>${esc(t("account_name"))}<input name="name" required maxlength="200" value="${esc(account.name)}"></label>
      <h3>${esc(t("replace_credentials"))}</h3><p class="hint">${esc(t("replace_credentials_hint"))}</p>
      <div id="account-fields">${fieldsFor(account.kind).replace(/ required/g, "")}</div>
      <div class="row"><button type="submit" class="primary" id="save-account">${esc(t("save"))}</button><button type="button" id="cancel-account">${esc(t("cancel"))}</button></div></form>`;
    const edit = $("#account-form", main);
    $("#cancel-account", main).onclick = () => { $("#account-editor", main).innerHTML = ""; };
    edit.name.focus();
    edit.onsubmit = async (event) => {
      event.preventDefault();
      const fields = [...edit.querySelectorAll("[name^=cred_]")];
      const body = {name: edit.name.value.trim()};
      // Typing into any field means a new set; a pre-filled default or a choice alone does not.
      if (fields.some((el) => el.tagName === "INPUT" && el.value !== "" && el.value !== el.defaultValue)) {
        body.credentials = Object.fromEntries(fields.filter((el) => el.value !== "")
          .map((el) => [el.name.slice(5), el.type === "number" ? Number(el.value) : el.value]));
      }
      const saved = await attempt(() => api("PATCH", `/channel-accounts/${account.id}`, body), t("saved"));
      edit.querySelectorAll("input[name^=cred_]").forEach((el) => { el.value = ""; });  // secrets leave the page
      if (saved) route();
    };
  });
  const drawFields = () => { $("#channel-fields").innerHTML = fieldsFor(form.kind.value); };
  form.kind.onchange = drawFields;
  drawFields();
  const collect = () => {
    const credentials = {};
    $$("#channel-fields [name^=cred_]").forEach((el) => {
      if (el.value === "") return;
      credentials[el.name.slice(5)] = el.type === "number" ? Number(el.value) : el.value;
    });
    return {kind: form.kind.value, name: form.name.value.trim(), credentials, api_base: form.api_base.value.trim() || null};
  };
  $("#test-connection").onclick = async () => {
    const body = collect();
    const result = await attempt(() => api("POST", "/channel-accounts/test", {kind: body.kind, credentials: body.credentials, api_base: body.api_base}));
    if (result) $("#channel-result").innerHTML = `<p class="badge good" id="connection-ok">${esc(t("connection_ok", {name: result.display_name}))}</p>`;
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const created = await attempt(() => api("POST", "/channel-accounts", collect()), t("saved"));
    if (!created) return;
    // Drawn again (secrets leave the page), with the new account listed and its webhook URL to paste.
    await channelsPage(main);
    $("#channel-result", main).innerHTML = `<h3>${esc(t("webhook_url"))}</h3><div class="copy-field"><input readonly id="new-webhook-url" value="${esc(created.webhook_url)}"></div>`;
    $("#new-webhook-url", main).scrollIntoView({block: "center"});
  };
}

// ---- knowledge base -----------------------------------------------------------------

async function faqPage(main) {
  const entries = await api("GET", "/faq");
  const lines = (s) => s.split("\n").map((x) => x.trim()).filter(Boolean);
  main.innerHTML = `<h1>${esc(t("faq"))}</h1>
    <form class="card toolbar" id="faq-try"><input name="q" placeholder="${esc(t("try_question"))}" style="flex:1"><button type="submit">${esc(t("try_question"))}</button><div id="faq-try-out" style="flex-basis:100%"></div></form>
    <div class="table-wrap"><table><tr><th>#</th><th>${esc(t("question_zh"))}</th><th>${esc(t("question_en"))}</th><th>${esc(t("answer_zh"))}</th><th></th></tr>
    ${entries.map((e) => `<tr><td>${e.id}</td><td>${esc((e.questions.zh || []).join(" / "))}</td><td>${esc((e.questions.en || []).join(" / "))}</td>
      <td>${esc(e.answers.zh || e.answers.en || "")}</td><td><button type="button" data-edit="${e.id}">✎</button> <button type="button" class="danger" data-delete="${e.id}">${esc(t("delete"))}</button></td></tr>`).join("")
      || `<tr><td colspan="5" class="muted">${esc(t("nothing"))}</td></tr>`}</table></div>
    <form class="card" id="faq-form"><h2 id="faq-form-title">${esc(t("new_entry"))}</h2><input type="hidden" name="team_id">
      <div class="grid"><label>${esc(t("question_zh"))}<textarea name="q_zh"></textarea></label><label>${esc(t("question_en"))}<textarea name="q_en"></textarea></label>
      <label>${esc(t("answer_zh"))}<textarea name="a_zh"></textarea></label><label>${esc(t("answer_en"))}<textarea name="a_en"></textarea></label></div>
      <label>${esc(t("synonyms"))}<textarea name="synonyms"></textarea></label>
      <div class="grid"><label>${esc(t("image_url"))}<input name="image_url" placeholder="https://"></label><label>${esc(t("link_url"))}<input name="link_url" placeholder="https://"></label></div>
      <button type="submit" class="primary">${esc(t("save"))}</button></form>`;
  const form = $("#faq-form");
  $$("[data-edit]").forEach((b) => b.onclick = () => {
    const e = entries.find((x) => x.id === Number(b.dataset.edit));
    form.id.value = e.id;
    form.q_zh.value = (e.questions.zh || []).join("\n"); form.q_en.value = (e.questions.en || []).join("\n");
    form.a_zh.value = e.answers.zh || ""; form.a_en.value = e.answers.en || "";
    form.synonyms.value = (e.synonyms || []).map((g) => g.join(", ")).join("\n");
    form.image_url.value = e.image_url || ""; form.link_url.value = e.link_url || "";
    $("#faq-form-title").textContent = `#${e.id}`;
    form.scrollIntoView();
  });
  $$("[data-delete]").forEach((b) => b.onclick = async () => {
    if (confirm(t("delete") + "?") && await attempt(() => api("DELETE", `/faq/${b.dataset.delete}`), t("deleted")) !== undefined) route();
  });
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {questions: {}, answers: {}, synonyms: lines(form.synonyms.value).map(commaList),
                  image_url: form.image_url.value.trim() || null, link_url: form.link_url.value.trim() || null};
    if (lines(form.q_zh.value).length) body.questions.zh = lines(form.q_zh.value);
    if (lines(form.q_en.value).length) body.questions.en = lines(form.q_en.value);
    if (form.a_zh.value.trim()) body.answers.zh = form.a_zh.value.trim();
    if (form.a_en.value.trim()) body.answers.en = form.a_en.value.trim();
    const id = form.id.value;
    if (await attempt(() => api(id ? "PUT" : "POST", id ? `/faq/${id}` : "/faq", body), t("saved"))) route();
  };
  $("#faq-try").onsubmit = async (event) => {
    event.preventDefault();
    const q = event.target.q.value.trim();
    if (!q) return;
    const matches = await attempt(() => api("POST", "/faq/search", {text: q}));
    if (matches) $("#faq-try-out").innerHTML = matches.map((m) => `<div>${Math.round(m.score * 100)}% · <strong>${esc(m.question)}</strong> ·
      <span class="badge ${m.confident ? "good" : "warn"}">${esc(t(m.confident ? "confident" : "not_confident"))}</span></div>`).join("") || esc(t("nothing"));
  };
}

// ---- monitoring -------------------------------------------------------------------

async function monitoringPage(main) {
  const readsSettings = ["admin", "manager"].includes(ME.role);
  const settings = readsSettings ? await api("GET", "/settings") : null;
  main.innerHTML = `<h1>${esc(t("monitoring"))}</h1><h2>${esc(t("alerts"))}</h2>
    <div class="toolbar row" id="alert-filters">
      <select name="status" aria-label="${esc(t("status"))}"><option value="">${esc(t("all"))}</option><option value="open">${esc(t("alert_open"))}</option><option value="closed">${esc(t("alert_closed"))}</option></select>
      <select name="dimension" aria-label="${esc(t("entity"))}"><option value="">${esc(t("all_kinds"))}</option>${["channel", "campaign", "team", "keyword", "keyword_rule"].map((d) => `<option>${d}</option>`).join("")}</select></div>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>${esc(t("when"))}</th><th>${esc(t("entity"))}</th><th>${esc(t("status"))}</th><th>${esc(t("peak"))}</th><th>${esc(t("volume"))}</th><th>${esc(t("terms"))}</th></tr></thead>
    <tbody id="alert-rows"></tbody></table></div>
    <section class="card" id="alert-detail"><p class="muted">${esc(t("pick_alert"))}</p></section>
    <section class="card" id="monitoring-rules"><h2>${esc(t("rules_title"))}</h2><p class="hint">${esc(t("rules_hint"))}</p>
      ${settings ? `<form id="rules-form">${["opinion_products", "compliance_terms"].map((name) => `<label>${esc(t("setting_" + name))}
        <textarea name="${name}"${ME.role === "admin" ? "" : " readonly"}>${esc(groupsText(settings.values[name]))}</textarea><span class="hint">${esc(t("setting_hint_" + name))}</span></label>`).join("")}
        ${ME.role === "admin" ? `<button type="submit" class="primary" id="save-rules">${esc(t("save"))}</button>` : `<p class="muted">${esc(t("settings_read_only"))}</p>`}</form>`
      : `<p class="muted">${esc(t("rules_settings_only"))}</p>`}</section>`;
  const filters = $("#alert-filters", main);
  const fresh = newestOnly();
  const showAlert = async (alert) => {
    const box = $("#alert-detail", main);
    const hours = Math.min(8 * 24, Math.max(24, Math.ceil((Date.now() - new Date(alert.first_hour)) / 3600e3) + 24));
    const [series, messages] = await Promise.all([
      api("GET", `/opinion/series?dimension=${encodeURIComponent(alert.dimension)}&key=${encodeURIComponent(alert.key)}&hours=${hours}`),
      api("GET", `/opinion/alerts/${alert.id}/messages`)]);
    const labels = series.hours.map((h) => h.start.slice(0, 13).replace("T", " ") + ":00");
    const first = labels.indexOf(alert.first_hour.slice(0, 13).replace("T", " ") + ":00");
    const slice = `${alert.dimension} · ${alert.key}`;
    box.innerHTML = `<h3>${esc(t("alert_trend", {slice}))}</h3>
      ${Charts.lines(labels, {[t("negative")]: series.hours.map((h) => (h.volume ? h.negative_share : null))}, t("alert_trend", {slice}),
        first >= 0 ? [{index: first, label: `#${alert.id}`}] : [], "%")}
      <h3>${esc(t("alert_messages"))}</h3><div id="alert-message-list">${messages.map((m) => `<div class="msg in">${esc(m.text || "")}
        <div class="meta">${esc(when(m.created_at))}${m.sentiment ? " · " + esc(m.sentiment) : ""} · <a href="#/inbox/${m.conversation_id}">${esc(t("open_in_inbox"))}</a></div></div>`).join("")
        || `<p class="muted">${esc(t("nothing"))}</p>`}</div>`;
  };
  const refresh = async () => {
    const params = new URLSearchParams();
    for (const name of ["status", "dimension"]) if (filters.querySelector(`[name=${name}]`).value) params.set(name, filters.querySelector(`[name=${name}]`).value);
    const alerts = await fresh(api("GET", `/opinion/alerts?${params}`));
    if (alerts === undefined) return;
    $("#alert-rows", main).innerHTML = alerts.map((a) => `<tr class="clickable" data-alert="${a.id}"><td>${a.id}</td><td>${esc(when(a.first_hour))}</td><td>${esc(a.dimension)} · ${esc(a.key)}</td><td><span class="badge ${a.status === "open" ? "bad" : ""}">${esc(a.status)}</span></td>
      <td>${Math.round(a.peak_share * 100)}%</td><td>${a.volume}</td><td>${esc(a.top_terms.map((x) => x[0]).join(", "))}</td></tr>`).join("")
      || `<tr><td colspan="7" class="muted">${esc(t("nothing"))}</td></tr>`;
    $$("[data-alert]", main).forEach((row) => row.onclick = () => {
      $$("[data-alert]", main).forEach((r) => r.classList.toggle("selected", r === row));
      attempt(() => showAlert(alerts.find((a) => a.id === Number(row.dataset.alert))));
    });
  };
  filters.querySelectorAll("select").forEach((el) => el.onchange = refresh);
  const rules = $("#rules-form", main);
  if (rules && ME.role === "admin") rules.onsubmit = async (event) => {
    event.preventDefault();
    const changes = {};
    for (const name of ["opinion_products", "compliance_terms"]) {
      const value = groupsValue(rules.elements[name].value), wanted = Object.keys(value).length ? value : null;
      if (JSON.stringify(wanted) !== JSON.stringify(settings.values[name] ?? null)) changes[name] = wanted;
    }
    if (!Object.keys(changes).length) return toast(t("saved"));
    if (await attempt(() => api("PUT", "/settings", {changes}), t("saved"))) route();
  };
  await refresh();
}

// ---- users and audit ----------------------------------------------------------------

async function usersPage(main) {
  const [users, teams] = await Promise.all([api("GET", "/users"), api("GET", "/teams")]);
  const admin = ME.role === "admin";
  const byId = Object.fromEntries(users.map((u) => [u.id, u]));
  const teamById = Object.fromEntries(teams.map((team) => [team.id, team]));
  const nameOf = (id) => (id ? (byId[id]?.display_name || byId[id]?.username || "#" + id) : "");
  const leaders = users.filter((u) => ["manager", "admin"].includes(u.role) && u.is_active);
  const options = (items, chosen, none) => `<option value="">${esc(none)}</option>` +
    items.map(([id, label]) => `<option value="${id}"${id === chosen ? " selected" : ""}>${esc(label)}</option>`).join("");
  const territoryText = (u) => [...(u.territory?.regions || []), ...(u.territory?.industries || [])].join(", ");
  main.innerHTML = `<h1>${esc(t("users"))}</h1>
    <div class="table-wrap"><table id="users-table"><tr><th>#</th><th>${esc(t("username"))}</th><th>${esc(t("display_name"))}</th><th>${esc(t("role"))}</th><th>${esc(t("manager"))}</th><th>${esc(t("team"))}</th><th>${esc(t("territory"))}</th><th></th></tr>
    ${users.map((u) => `<tr data-user="${u.id}"><td>${u.id}</td><td>${esc(u.username)}</td><td>${esc(u.display_name || "")}</td><td><span class="badge">${esc(u.role)}</span>${u.is_active ? "" : ` <span class="badge bad">off</span>`}</td>
      <td>${esc(nameOf(u.manager_user_id))}</td><td>${esc(teamById[u.team_id]?.name || "")}</td><td>${esc(territoryText(u))}</td>
      <td><div class="row actions"><button type="button" data-edit="${u.id}">${esc(t("edit"))}</button>${admin ? `<button type="button" data-password="${u.id}">${esc(t("set_password"))}</button>` : ""}</div></td></tr>`).join("")}</table></div>
    <div id="user-editor"></div>
    <h2>${esc(t("teams"))}</h2>
    <div class="table-wrap"><table id="teams-table"><tr><th>${esc(t("name"))}</th><th>${esc(t("manager"))}</th><th>${esc(t("team_channels"))}</th><th>${esc(t("members"))}</th><th></th></tr>
    ${teams.map((team) => `<tr data-team="${team.id}"><td>${esc(team.name)}</td><td>${esc(nameOf(team.manager_user_id))}</td><td>${team.channels.map((c) => `<span class="badge">${esc(c)}</span>`).join(" ")}</td><td>${team.members}</td>
      <td><div class="row actions">${admin ? `<button type="button" data-edit-team="${team.id}">${esc(t("edit"))}</button><button type="button" class="link" data-delete-team="${team.id}">${esc(t("delete"))}</button>` : ""}</div></td></tr>`).join("")
      || `<tr><td colspan="5" class="muted">${esc(t("nothing"))}</td></tr>`}</table></div>
    ${admin ? `<form class="card" id="team-form"><h2 id="team-form-title">${esc(t("new_team"))}</h2><input type="hidden" name="team_id">
      <div class="step-grid"><label>${esc(t("name"))}<input name="name" required maxlength="100"></label>
        <label>${esc(t("manager"))}<select name="manager">${options(leaders.map((u) => [u.id, u.display_name || u.username]), null, t("no_manager"))}</select></label></div>
      <fieldset class="row" id="team-channels"><legend>${esc(t("team_channels"))}</legend>${CHANNEL_KINDS.map((k) => `<label class="row"><input type="checkbox" name="channel" value="${k}" style="width:auto"> ${k}</label>`).join("")}</fieldset>
      <div class="hint">${esc(t("team_channels_hint"))}</div>
      <button type="submit" class="primary" id="save-team">${esc(t("save"))}</button></form>
    <form class="card" id="user-form"><h2>${esc(t("new_user"))}</h2><div class="step-grid">
      <label>${esc(t("username"))}<input name="username" required pattern="[A-Za-z0-9_.@-]+"></label><label>${esc(t("display_name"))}<input name="display_name"></label>
      <label>${esc(t("role"))}<select name="role">${["rep", "manager", "operator", "admin"].map((r) => `<option>${r}</option>`).join("")}</select></label>
      <label>${esc(t("manager"))}<select name="manager">${options(leaders.map((u) => [u.id, u.display_name || u.username]), null, t("no_manager"))}</select></label>
      <label>${esc(t("team"))}<select name="team">${options(teams.map((team) => [team.id, team.name]), null, t("no_team"))}</select></label>
      <label>${esc(t("password"))}<input name="password" type="password" autocomplete="new-password" minlength="10"></label></div>
      <button type="submit" class="primary">${esc(t("save"))}</button></form>` : ""}`;
  $$("[data-password]").forEach((b) => b.onclick = async () => {
    const password = prompt(t("password"));
    if (password) await attempt(() => api("POST", `/users/${b.dataset.password}/password`, {password}), t("password_set"));
  });
  // Admins edit everything about a user; managers their reps' territories.
  $$("[data-edit]").forEach((b) => b.onclick = () => {
    const u = byId[Number(b.dataset.edit)];
    const box = $("#user-editor");
    box.innerHTML = `<form class="card" id="edit-user-form"><h2>${esc(t("edit_user", {name: u.display_name || u.username}))}</h2>
      ${admin ? `<div class="step-grid"><label>${esc(t("display_name"))}<input name="display_name" value="${esc(u.display_name || "")}"></label>
        <label>${esc(t("role"))}<select name="role">${["rep", "manager", "operator", "admin"].map((r) => `<option${r === u.role ? " selected" : ""}>${r}</option>`).join("")}</select></label>
        <label>${esc(t("manager"))}<select name="manager">${options(leaders.filter((m) => m.id !== u.id).map((m) => [m.id, m.display_name || m.username]), u.manager_user_id, t("no_manager"))}</select></label>
        <label>${esc(t("team"))}<select name="team">${options(teams.map((team) => [team.id, team.name]), u.team_id, t("no_team"))}</select></label></div>
        <label class="row"><input type="checkbox" name="is_active"${u.is_active ? " checked" : ""} style="width:auto"> ${esc(t("active_user"))}</label>` : ""}
      ${u.is_active ? `<label>${esc(t("hand_over_to"))}<select name="heir">${options(users.filter((x) => x.is_active && x.id !== u.id && ["rep", "manager", "admin"].includes(x.role))
        .map((x) => [x.id, x.display_name || x.username]), null, t("hand_over_nobody"))}</select><span class="hint">${esc(t("hand_over_hint"))}</span></label>` : ""}
      <h3>${esc(t("territory"))}</h3><div class="step-grid"><label>${esc(t("regions"))}<input name="regions" value="${esc((u.territory?.regions || []).join(", "))}"></label>
        <label>${esc(t("industries"))}<input name="industries" value="${esc((u.territory?.industries || []).join(", "))}"></label></div>
      <div class="row"><button type="submit" class="primary" id="save-user">${esc(t("save"))}</button><button type="button" id="cancel-edit">${esc(t("cancel"))}</button></div></form>`;
    const form = $("#edit-user-form");
    form.querySelector("[name=" + (admin ? "display_name" : "regions") + "]").focus();
    $("#cancel-edit").onclick = () => { box.innerHTML = ""; };
    form.onsubmit = async (event) => {
      event.preventDefault();
      const heir = form.elements.heir ? form.elements.heir.value : "";
      const leaving = admin && !form.is_active.checked;
      if (heir) {
        const moved = await attempt(() => api("POST", `/users/${u.id}/handover`, {to_user_id: Number(heir), deactivate: leaving}));
        if (moved === undefined) return;
        toast(t("handed_over", {n: moved.reassigned}));
      }
      if (admin && await attempt(() => api("PATCH", `/users/${u.id}`, {display_name: form.display_name.value.trim() || null, role: form.role.value,
        manager_user_id: form.manager.value ? Number(form.manager.value) : null, team_id: form.team.value ? Number(form.team.value) : null,
        is_active: form.is_active.checked})) === undefined) return;
      if (await attempt(() => api("PUT", `/users/${u.id}/territory`, {regions: commaList(form.regions.value), industries: commaList(form.industries.value)}), t("saved")) !== undefined) route();
    };
  });
  const teamForm = $("#team-form");
  if (teamForm) {
    $$("[data-edit-team]").forEach((b) => b.onclick = () => {
      const team = teamById[Number(b.dataset.editTeam)];
      teamForm.team_id.value = team.id;
      teamForm.name.value = team.name;
      teamForm.manager.value = team.manager_user_id || "";
      teamForm.querySelectorAll("[name=channel]").forEach((box) => { box.checked = team.channels.includes(box.value); });
      $("#team-form-title").textContent = t("edit_user", {name: team.name});
      teamForm.name.focus();
    });
    $$("[data-delete-team]").forEach((b) => b.onclick = async () => {
      if (confirm(t("delete_team_confirm")) && await attempt(() => api("DELETE", `/teams/${b.dataset.deleteTeam}`), t("deleted")) !== undefined) route();
    });
    teamForm.onsubmit = async (event) => {
      event.preventDefault();
      const id = teamForm.team_id.value;
      const body = {name: teamForm.name.value.trim(), manager_user_id: teamForm.manager.value ? Number(teamForm.manager.value) : null,
        channels: [...teamForm.querySelectorAll("[name=channel]:checked")].map((box) => box.value)};
      if (await attempt(() => api(id ? "PUT" : "POST", id ? `/teams/${id}` : "/teams", body), t("saved"))) route();
    };
  }
  const form = $("#user-form");
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const created = await attempt(() => api("POST", "/users", {username: form.username.value.trim(), display_name: form.display_name.value.trim() || null,
      role: form.role.value, manager_user_id: form.manager.value ? Number(form.manager.value) : null, team_id: form.team.value ? Number(form.team.value) : null}));
    if (!created) return;
    if (form.password.value && await attempt(() => api("POST", `/users/${created.id}/password`, {password: form.password.value})) === undefined) return route();
    toast(t("saved"));
    route();
  };
}

// Settings: the values in force; the environment's beside each one the panel changed.
const SETTING_KINDS = {
  sla_first_response_minutes: "number", sla_escalate_minutes: "number", lead_hot_score: "number",
  lead_first_response_minutes: "number", lead_escalate_minutes: "number", marketing_cap_count: "number",
  marketing_cap_days: "number", negative_alert_confidence: "number", marketing_quiet_hours: "text",
  lead_routing: ["claim", "round_robin", "load"], opinion_products: "groups", compliance_terms: "groups",
};
const WIDE_SETTINGS = ["lead_stages"];
const groupsText = (value) => Object.entries(value || {}).map(([name, words]) => `${name}: ${words.join(", ")}`).join("\n");
const groupsValue = (text) => Object.fromEntries(text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
  const [name, ...rest] = line.split(/[:：]/);
  return [name.trim(), commaList(rest.join(":"))];
}));

async function settingsPage(main) {
  const data = await api("GET", "/settings");
  const admin = ME.role === "admin";
  const field = (name) => {
    const kind = SETTING_KINDS[name] || "text", value = data.values[name], env = data.environment[name];
    const changed = data.changed_in_panel.includes(name);
    const input = Array.isArray(kind) ? `<select name="${name}"${admin ? "" : " disabled"}>${kind.map((o) => `<option${o === value ? " selected" : ""}>${esc(o)}</option>`).join("")}</select>`
      : kind === "groups" ? `<textarea name="${name}"${admin ? "" : " readonly"}>${esc(groupsText(value))}</textarea>`
      : `<input name="${name}" type="${kind}" step="any" value="${esc(value ?? "")}"${admin ? "" : " readonly"}>`;
    const envText = kind === "groups" ? (env ? groupsText(env).replace(/\n/g, "; ") : t("setting_default")) : (env ?? "");
    return `<label${WIDE_SETTINGS.includes(name) ? ' class="wide"' : ""}>${esc(t("setting_" + name))}${changed ? ` <span class="badge warn">${esc(t("changed_in_panel"))}</span>` : ""}${input}
      <span class="hint">${esc(t("setting_hint_" + name))} · ${esc(t("environment"))}: ${esc(envText)}${changed && admin ? ` · <a href="#" data-reset="${name}">${esc(t("reset"))}</a>` : ""}</span></label>`;
  };
  main.innerHTML = `<h1>${esc(t("settings"))}</h1><form id="settings-form">
    ${Object.entries(data.sections).map(([section, names]) => `<section class="card"><h2>${esc(t("section_" + section))}</h2>
      <div class="${section === "monitoring" ? "" : "step-grid"}">${names.map(field).join("")}</div></section>`).join("")}
    ${admin ? `<button type="submit" class="primary" id="save-settings">${esc(t("save"))}</button>` : `<p class="muted">${esc(t("settings_read_only"))}</p>`}</form>`;
  const form = $("#settings-form");
  const read = (name) => {
    const el = form.elements[name], kind = SETTING_KINDS[name];
    if (kind === "number") return el.value === "" ? null : Number(el.value);
    if (kind === "groups") { const v = groupsValue(el.value); return Object.keys(v).length ? v : null; }
    return el.value;
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const changes = {};
    for (const names of Object.values(data.sections)) for (const name of names) {
      const value = read(name);
      if (JSON.stringify(value) !== JSON.stringify(data.values[name] ?? null)) changes[name] = value;
    }
    if (!Object.keys(changes).length) return toast(t("saved"));
    if (await attempt(() => api("PUT", "/settings", {changes}), t("saved"))) route();
  };
  $$("[data-reset]").forEach((a) => a.onclick = async (event) => {
    event.preventDefault();
    if (await attempt(() => api("PUT", "/settings", {changes: {[a.dataset.reset]: null}}), t("saved"))) route();
  });
}

async function accountPage(main) {
  main.innerHTML = `<h1>${esc(ME.display_name || ME.username)}</h1>
    <form class="card" id="password-form" style="max-width:420px"><h2>${esc(t("change_password"))}</h2>
      <label>${esc(t("current_password"))}<input name="current" type="password" autocomplete="current-password" required></label>
      <label>${esc(t("new_password"))}<input name="next" type="password" autocomplete="new-password" minlength="10" required></label>
      <label>${esc(t("repeat_password"))}<input name="again" type="password" autocomplete="new-password" minlength="10" required></label>
      <p class="hint">${esc(t("password_rules"))}</p>
      <button type="submit" class="primary">${esc(t("save"))}</button></form>`;
  const form = $("#password-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    if (form.next.value !== form.again.value) return toast(t("passwords_differ"), true);
    const done = await attempt(() => api("POST", "/me/password", {current_password: form.current.value, new_password: form.next.value}));
    if (done !== undefined) location.href = "/admin/login";  // every session ends with the old password
  };
}

const AUDIT_ENTITIES = ["user", "team", "contact", "lead", "conversation", "campaign", "enrolment", "channel_account",
  "faq_entry", "event", "settings", "outbox_message"];
const detailsText = (details) => Object.entries(details || {}).map(([key, value]) =>
  `${key}: ${typeof value === "object" && value !== null ? JSON.stringify(value) : value}`).join("\n");

async function auditPage(main) {
  const users = await api("GET", "/users");
  main.innerHTML = `<h1>${esc(t("audit"))}</h1>
    <form class="toolbar row" id="audit-filters">
      <input name="action" placeholder="${esc(t("audit_action_hint"))}" aria-label="${esc(t("action"))}">
      <select name="entity_type" aria-label="${esc(t("entity"))}"><option value="">${esc(t("audit_all_entities"))}</option>${AUDIT_ENTITIES.map((k) => `<option>${k}</option>`).join("")}</select>
      <input name="entity_id" placeholder="#" aria-label="#" style="width:6em">
      <select name="actor_user_id" aria-label="${esc(t("who"))}"><option value="">${esc(t("audit_everyone"))}</option>${users.map((u) => `<option value="${u.id}">${esc(u.display_name || u.username)}</option>`).join("")}</select>
      <button type="submit">${esc(t("search"))}</button></form>
    <div class="table-wrap"><table><thead><tr><th>${esc(t("when"))}</th><th>${esc(t("who"))}</th><th>${esc(t("action"))}</th><th>${esc(t("entity"))}</th><th>${esc(t("details"))}</th></tr></thead>
    <tbody id="audit-rows"></tbody></table></div>
    <button type="button" id="audit-more" hidden>${esc(t("more"))}</button>`;
  const form = $("#audit-filters", main);
  let oldest = null;
  const fresh = newestOnly();
  const load = async (more) => {
    const params = new URLSearchParams({limit: "100"});
    for (const name of ["action", "entity_type", "entity_id", "actor_user_id"]) {
      const value = form.elements[name].value.trim();  // form.action would be the form's own attribute
      if (value) params.set(name, value);
    }
    if (more && oldest) params.set("before_id", oldest);
    const entries = await fresh(api("GET", `/audit?${params}`));
    if (entries === undefined) return;
    const rows = entries.map((e) => `<tr><td>${esc(when(e.at))}</td><td>${esc(e.actor)}</td><td><code>${esc(e.action)}</code></td><td>${esc(e.entity)}</td><td class="details">${esc(detailsText(e.details))}</td></tr>`).join("");
    const body = $("#audit-rows", main);
    if (more) body.insertAdjacentHTML("beforeend", rows);
    else body.innerHTML = rows || `<tr><td colspan="5" class="muted">${esc(t("nothing"))}</td></tr>`;
    if (entries.length) oldest = entries[entries.length - 1].id;
    $("#audit-more", main).hidden = entries.length < 100;
  };
  form.onsubmit = (event) => { event.preventDefault(); load(false); };
  form.elements.entity_type.onchange = form.elements.actor_user_id.onchange = () => load(false);
  $("#audit-more", main).onclick = () => load(true);
  await load(false);
}

// ---- start ------------------------------------------------------------------------

$("#menu-toggle").onclick = () => $("#nav").classList.toggle("open");
window.addEventListener("hashchange", route);
drawChrome();
route();
