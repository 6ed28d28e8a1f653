// The inbox page.
import {$, $$, api, attempt, CHANNEL_KINDS, either, html, label, markup, ME, t, upload, when} from "../core.js";
import {deliveryLine, UNSETTLED} from "../messages.js";

export async function inboxPage(main, rest) {
  const filters = {channel: "", owner: "", status: "", sentiment: "", q: ""};
  let selected = rest[0] ? Number(rest[0]) : null;
  let version = -1;
  const option = (value, label, current) => html`<option value="${value}"${value === current ? " selected" : ""}>${label}</option>`;
  main.innerHTML = markup(html`<h1>${t("inbox")}</h1>
    <div class="toolbar" id="inbox-filters">
      <select name="channel" aria-label="${t("channel")}">${option("", html`${t("channel")}: ${t("all")}`, "")}
        ${CHANNEL_KINDS.map((k) => option(k, label("kind", k), ""))}</select>
      <select name="owner" aria-label="${t("owner")}">${option("", html`${t("owner")}: ${t("all")}`, "")}${option("me", t("me"), "")}${option("none", t("unowned"), "")}</select>
      <select name="status" aria-label="${t("status")}">${option("", html`${t("status")}: ${t("all")}`, "")}
        ${["open", "waiting", "handoff", "closed"].map((k) => option(k, t(k), ""))}</select>
      <select name="sentiment" aria-label="${t("sentiment")}">${option("", html`${t("sentiment")}: ${t("all")}`, "")}
        ${["negative", "neutral", "positive"].map((k) => option(k, t(k), ""))}</select>
      <input name="q" type="search" placeholder="${t("search")}">
    </div>
    <div class="inbox" id="inbox"><div class="inbox-list" id="inbox-list"></div><section class="thread" id="thread"><p class="muted" style="padding:14px">${t("pick_conversation")}</p></section></div>`);
  $$("#inbox-filters select, #inbox-filters input").forEach((el) => {
    el.addEventListener(el.tagName === "INPUT" ? "input" : "change", () => { filters[el.name] = el.value; version = -1; refresh(); });
  });
  let users = [], teams = [];
  if (ME.role === "admin" || ME.role === "manager") {
    [users, teams] = await Promise.all([api("GET", "/users").catch(() => []), api("GET", "/teams").catch(() => [])]);
    // Supervisors narrow the inbox to one person or one team as well.
    $("#inbox-filters select[name=owner]").insertAdjacentHTML("beforeend",
      markup([...teams.map((team) => option(`team:${team.id}`, `${t("team")}: ${team.name}`, "")),
        ...users.filter((u) => u.is_active && ["rep", "manager", "admin"].includes(u.role)).map((u) => option(String(u.id), u.display_name || u.username, ""))]));
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
    $("#inbox-list").innerHTML = markup(page.rows.length ? page.rows.map((r) => html`
      <div class="inbox-item${r.id === selected ? " active" : ""}" data-id="${r.id}">
        <div class="line1"><strong>${r.name}</strong><span class="muted">${when(r.last_message_at)}</span></div>
        <div class="row"><span class="badge">${label("kind", r.channel)}</span>${r.waiting ? html`<span class="badge waiting">${t("waiting")}</span>` : ""}
          ${r.sentiment === "negative" ? html`<span class="badge negative">${t("negative")}</span>` : ""}<span class="muted">${r.owner || t("unowned")}</span></div>
        <div class="preview">${r.last_direction === "out" ? "↩ " : ""}${r.last_text || ""}</div>
      </div>`) : html`<p class="muted" style="padding:12px">${t("nothing")}</p>`);
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
    const items = [...th.messages.map((m) => ({at: m.created_at, html: html`<div class="msg ${m.direction === "out" ? "out" : "in"}">${m.text}${mediaParts(m.media)}<div class="meta">${label("kind", m.channel)} · ${when(m.created_at)}${m.author ? " · " + m.author : (m.direction === "out" ? " · " + t("bot") : "")}${m.sentiment === "negative" ? " · ⚠" : ""}${m.recalled ? html` · <span class="badge bad recalled">${t("recalled")}</span>` : ""}</div>${deliveryLine(m.delivery)}</div>`})),
      ...th.notes.map((n) => ({at: n.created_at, html: html`<div class="note"><strong>${t("note")}:</strong> ${n.text}<div class="meta">${n.author || ""} · ${when(n.created_at)}</div></div>`}))];
    return either(items.sort((a, b) => a.at.localeCompare(b.at)).map((i) => i.html), html`<p class="muted">${t("nothing")}</p>`);
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
    list.innerHTML = markup(threadItems(th));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  async function openThread() {
    const th = await api("GET", `/inbox/${selected}`);
    const box = $("#thread");
    if (!box) return;
    settling(th);
    $("#inbox").classList.add("has-thread");
    const c = th.conversation;
    const assign = users.length ? html`<select id="assign-to" aria-label="${t("assign")}">
        ${option("", t("queue"), c.owner_id ? "" : "")}${users.filter((u) => u.is_active && ["rep", "manager", "admin"].includes(u.role))
        .map((u) => option(String(u.id), u.display_name || u.username, String(c.owner_id || "")))}</select>
        <button id="assign" type="button">${t("assign")}</button>` : "";
    box.dataset.id = String(c.id);
    box.innerHTML = markup(html`<div class="thread-head"><div class="row"><button type="button" class="link" id="back-to-list" aria-label="back">←</button>
        <strong>${c.name}</strong><span class="badge">${label("kind", c.channel)} · ${c.account}</span>
        <a href="#/contacts/${c.contact_id}">${t("contacts")} #${c.contact_id}</a><span class="muted">${t("owner")}: ${c.owner || t("unowned")}</span></div>
        <div class="row" style="margin-top:6px">${assign}</div></div>
      <div class="messages" id="messages">${threadItems(th)}</div>
      ${th.may_act ? html`<form class="composer" id="reply-form"><textarea name="text" placeholder="${t("reply_placeholder")}" aria-label="${t("reply")}"></textarea>
        <ul class="picker" id="quick-picker" hidden></ul>
        <div class="row"><button class="primary" type="submit" id="send-reply">${t("send")}</button>
          <label class="row" style="margin:0" title="${t("attach_hint")}">${t("attach")}<input type="file" name="attachment" id="reply-attach" accept="image/png,image/jpeg,image/gif,image/webp,.pdf,.docx,.xlsx,.pptx" style="width:auto"></label>
          <label class="row" style="margin:0">${t("reply_on")}<select name="on" id="reply-on">${th.conversations.map((x) => option(String(x.id), html`${label("kind", x.channel)} · ${x.account}`, String(c.id)))}</select></label></div></form>
      <form class="composer" id="note-form"><textarea name="text" required placeholder="${t("note_placeholder")}" aria-label="${t("note")}"></textarea>
        <div class="row"><button type="submit">${t("add_note")}</button></div></form>` : ""}`);
    const list = $("#messages");
    list.scrollTop = list.scrollHeight;
    $("#back-to-list").onclick = () => { $("#inbox").classList.remove("has-thread"); };
    const replyForm = $("#reply-form");
    if (replyForm) quickPicker(replyForm, c.id);
    if (replyForm) replyForm.onsubmit = async (event) => {
      event.preventDefault();
      const text = replyForm.text.value.trim();
      const file = replyForm.attachment.files[0];
      if (!text && !file) return;
      const button = $("#send-reply");
      button.disabled = true;
      // A double click or a retry is one send.
      const key = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
      const on = Number(replyForm.elements.on.value) || c.id;
      const body = {text};
      if (replyForm.dataset.image) body.image_url = replyForm.dataset.image;
      if (replyForm.dataset.file) Object.assign(body, {file_url: replyForm.dataset.file, file_name: replyForm.dataset.fileName || null});
      if (file) {
        const uploaded = await attempt(() => upload(file));
        if (!uploaded) { button.disabled = false; return; }
        if (uploaded.kind === "image") body.image_url = uploaded.url;
        else Object.assign(body, {file_url: uploaded.url, file_name: uploaded.name});
      }
      const ok = await attempt(() => api("POST", `/conversations/${on}/messages`, body, {"Idempotency-Key": key}), t("sent_ok"));
      button.disabled = false;
      if (ok) { replyForm.text.value = ""; replyForm.attachment.value = ""; replyForm.dataset.image = replyForm.dataset.file = replyForm.dataset.fileName = ""; await refresh(); updateThread(); }
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

// Typing "/" then words in the reply box offers the quick replies that match; one chosen is
// filled for this customer by the hub (as the rep bot's /q) and put in the box to send or edit.
// Pictures and files beside a message's words: a link to each where it has an address.
function mediaParts(media) {
  return (media || []).map((part) => {
    const name = part.name || (part.kind === "image" ? t("picture_sent") : (part.url || "").split("/").pop());
    const mark = part.kind === "image" ? "🖼" : "📎";
    return html`<div class="media-part">${mark} ${part.url ? html`<a href="${part.url}" target="_blank" rel="noopener">${name}</a>` : name}</div>`;
  });
}

function quickPicker(form, conversationId) {
  const box = form.text, list = $("#quick-picker");
  let pending, asked = 0;
  const hide = () => { list.hidden = true; list.innerHTML = ""; };
  box.addEventListener("input", () => {
    clearTimeout(pending);
    if (!box.value.startsWith("/")) { hide(); return; }
    pending = setTimeout(async () => {
      const mine = ++asked;
      const found = await api("GET", "/quick-replies?q=" + encodeURIComponent(box.value.slice(1).trim())).catch(() => []);
      if (mine !== asked || !box.value.startsWith("/")) return;  // a newer search, or the slash is gone
      list.innerHTML = markup(either(found.slice(0, 6).map((r) => html`<li><button type="button" data-quick="${r.id}"><code>${r.shortcut || ""}</code> ${r.title}</button></li>`),
        html`<li class="muted">${t("nothing")}</li>`));
      list.hidden = false;
      $$("[data-quick]", list).forEach((b) => b.onclick = async () => {
        const filled = await attempt(() => api("GET", `/quick-replies/${b.dataset.quick}/filled?conversation_id=${conversationId}`));
        if (!filled) return;
        box.value = filled.text;
        form.dataset.image = filled.image_url || "";  // the reply's picture and document go with it
        form.dataset.file = filled.file_url || "";
        form.dataset.fileName = filled.file_name || "";
        hide();
        box.focus();
      });
    }, 200);
  });
}
