// The contacts page.
import {$, $$, api, attempt, CHANNEL_KINDS, commaList, detailsText, either, html, label, markup, ME, newestOnly, reload, t, toast, when} from "../core.js";
import {deliveryLine} from "../messages.js";

// ---- contacts and leads --------------------------------------------------------------

export async function contactsPage(main, rest) {
  if (rest[0]) return contactPage(main, Number(rest[0]));
  const fresh = newestOnly();
  const draw = async (q) => {
    const rows = await fresh(api("GET", "/contacts?limit=100" + (q ? "&q=" + encodeURIComponent(q) : "")));
    if (rows === undefined || !$("#contact-rows")) return;  // a newer search, or another page meanwhile
    $("#contact-rows").innerHTML = markup(rows.length ? rows.map((c) => html`<tr class="clickable" data-id="${c.id}"><td>#${c.id}</td><td>${c.name || c.display_name || ""}</td>
      <td><span class="badge">${label("stage", c.stage)}</span></td><td>${c.source || ""}</td><td>${c.language || ""}</td><td>${when(c.created_at)}</td></tr>`)
      : html`<tr><td colspan="6" class="muted">${t("nothing")}</td></tr>`);
    $$("#contact-rows tr.clickable").forEach((tr) => tr.addEventListener("click", () => { location.hash = `#/contacts/${tr.dataset.id}`; }));
  };
  main.innerHTML = markup(html`<h1>${t("contacts")}</h1><div class="toolbar"><input type="search" id="contact-search" placeholder="${t("search")}"></div>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>${t("name")}</th><th>${t("stage")}</th><th>${t("source")}</th><th>${t("language")}</th><th>${t("created")}</th></tr></thead>
    <tbody id="contact-rows"></tbody></table></div>`);
  let pending;
  $("#contact-search").addEventListener("input", (e) => { clearTimeout(pending); pending = setTimeout(() => draw(e.target.value.trim()), 250); });
  await draw("");
  if (["admin", "operator", "manager"].includes(ME.role)) await tagsSection(main);
}

// The tags in use: renamed or deleted on every contact at once, and in WeCom where they are corp tags.
async function tagsSection(main) {
  const counts = await api("GET", "/tags");
  const manages = ["admin", "operator"].includes(ME.role);
  const section = document.createElement("section");
  section.className = "card";
  section.id = "tags";
  section.innerHTML = markup(html`<h2>${t("tags")}</h2><p class="hint">${t("tags_hint")}</p>
    <div class="table-wrap"><table id="tag-rows"><tr><th>${t("tags")}</th><th>${t("contacts")}</th><th></th></tr>
    ${either(Object.entries(counts).map(([name, count]) => html`<tr data-tag="${name}"><td>${name}</td><td>${count}</td>
      <td>${manages ? html`<button type="button" data-rename="${name}">${t("rename")}</button> <button type="button" class="danger" data-delete-tag="${name}">${t("delete")}</button>` : ""}</td></tr>`),
      html`<tr><td colspan="3" class="muted">${t("nothing")}</td></tr>`)}</table></div>`);
  main.appendChild(section);
  section.querySelectorAll("[data-rename]").forEach((b) => b.onclick = async () => {
    const name = (prompt(t("rename_tag_to", {tag: b.dataset.rename}), b.dataset.rename) || "").trim();
    if (name && name !== b.dataset.rename
        && await attempt(() => api("PUT", `/tags/${encodeURIComponent(b.dataset.rename)}`, {name}), t("saved")) !== undefined) reload();
  });
  section.querySelectorAll("[data-delete-tag]").forEach((b) => b.onclick = async () => {
    if (confirm(t("delete_tag_confirm", {tag: b.dataset.deleteTag}))
        && await attempt(() => api("DELETE", `/tags/${encodeURIComponent(b.dataset.deleteTag)}`), t("deleted")) !== undefined) reload();
  });
}

async function contactPage(main, id) {
  const contact = await api("GET", `/contacts/${id}`);
  const conversations = await api("GET", `/conversations?contact_id=${id}`);
  const consent = await api("GET", `/contacts/${id}/consent`).catch(() => null);
  const leads = await api("GET", `/leads?contact_id=${id}`).catch(() => []);
  const tasks = await api("GET", `/tasks?state=all&contact_id=${id}`).catch(() => []);
  const thread = conversations.length ? await api("GET", `/inbox/${conversations[0].id}`) : null;
  const mayErase = ME.role === "admin";
  main.innerHTML = markup(html`<h1>${contact.name || contact.display_name || "#" + contact.id} <span class="badge">${label("stage", contact.stage)}</span></h1>
    <div class="grid">
      <section class="card"><dl class="kv"><dt>#</dt><dd>${contact.id}</dd><dt>${t("source")}</dt><dd>${contact.source || ""}</dd>
        <dt>${t("language")}</dt><dd>${contact.language || ""}</dd><dt>${t("owner")}</dt><dd>${thread ? thread.conversation.owner || t("unowned") : ""}</dd>
        <dt>${t("created")}</dt><dd>${when(contact.created_at)}</dd>
        <dt>${t("phones")}</dt><dd id="contact-phones">${contact.phones.join(", ")}</dd><dt>${t("emails")}</dt><dd id="contact-emails">${contact.emails.join(", ")}</dd></dl>
        <form id="tags-form" class="row" style="margin-top:12px"><label style="margin:0;flex:1">${t("tags")}<input name="tags" value="${contact.tags.join(", ")}"></label>
          <button type="submit">${t("save")}</button></form>
        <div class="row" style="margin-top:12px"><a class="button" href="/api/v1/contacts/${id}/export" download="contact-${id}.json" id="export">${t("export")}</a>
        ${mayErase ? html`<button class="danger" type="button" id="erase">${t("erase")}</button>` : ""}</div>
        ${["admin", "operator", "manager"].includes(ME.role) ? html`<form id="merge-form" class="row" style="margin-top:14px">
          <label style="margin:0">${t("merge_into_this")}<input name="source" type="number" min="1" placeholder="#"></label>
          <button type="submit">${t("preview")}</button></form><div id="merge-preview"></div>` : ""}</section>
      <section class="card"><h3>${t("identities")}</h3><ul>${contact.identities.map((i) => html`<li>${i.display_name || i.username || i.external_id}
        <span class="muted">· #${i.channel_account_id} · ${i.external_id}</span>${i.reachable ? "" : html` <span class="badge bad">${i.unreachable_reason || "unreachable"}</span>`}</li>`)}</ul>
        <h3>${t("leads")}</h3>${leads.length ? leads.map((l) => html`<div>#${l.id} <span class="badge">${label("stage", l.stage)}</span> ${t("score")} ${l.score} · ${l.company || ""}</div>`) : html`<p class="muted">${t("nothing")}</p>`}
        <h3>${t("tasks")}</h3><div id="contact-tasks">${either(tasks.map((x) => html`<div>T${x.id} ${when(x.due_at)} · ${x.title} · ${x.owner_name || ""}
          ${x.done_at ? html`<span class="badge ok">${t("task_done")}</span>` : x.overdue ? html`<span class="badge bad">${t("task_overdue")}</span>` : ""}</div>`),
          html`<p class="muted">${t("nothing")}</p>`)}</div></section>
    </div>
    <section class="card" id="consent-card"><h3>${t("consent")}</h3>
      ${consent ? html`<div id="consent-state">${either(Object.entries(consent.state).map(([purpose, scopes]) => html`<div><strong>${t("purpose_" + purpose)}</strong>: ${Object.entries(scopes).map(([scope, st]) =>
        html`<span class="badge ${st.granted ? "good" : "bad"}">${scope === "*" ? t("every_channel") : scope} · ${t(st.granted ? "granted" : "withdrawn")}</span> <span class="muted">${when(st.since)}</span> `)}</div>`), html`<p class="muted">${t("consent_none")}</p>`)}
        ${consent.awaiting_confirmation.map((r) => html`<div class="muted">${t("awaiting_confirmation", {purpose: t("purpose_" + r.purpose), until: when(r.expires_at)})}</div>`)}</div>` : ""}
      ${consent && consent.events.length ? html`<div class="table-wrap"><table><tr><th>${t("when")}</th><th></th><th>${t("channel")}</th><th>${t("source")}</th><th>${t("proof")}</th></tr>
      ${consent.events.map((e) => html`<tr><td>${when(e.at)}</td><td><span class="badge ${e.granted ? "good" : "bad"}">${t(e.granted ? "granted" : "withdrawn")}</span> ${t("purpose_" + e.purpose)}</td>
      <td>${e.channel ? label("kind", e.channel) : "*"}</td><td>${label("source", e.source)}${e.actor ? " · " + (e.actor) : ""}</td><td class="details">${detailsText(e.evidence)}</td></tr>`)}</table></div>`
      : ""}
      ${["admin", "operator", "manager"].includes(ME.role) ? html`<form id="consent-form" class="step-grid" style="margin-top:12px">
        <label>${t("purpose")}<select name="purpose"><option value="marketing">${t("purpose_marketing")}</option><option value="service">${t("purpose_service")}</option></select></label>
        <label>${t("consent")}<select name="granted"><option value="false">${t("withdrawn")}</option><option value="true">${t("granted")}</option></select></label>
        <label>${t("channel")}<select name="channel"><option value="">${t("every_channel")}</option>${CHANNEL_KINDS.map((k) => html`<option value="${k}">${label("kind", k)}</option>`)}</select></label>
        <label>${t("consent_note")}<input name="note" required maxlength="500" placeholder="${t("consent_note_hint")}"></label>
        <label class="row"><input type="checkbox" name="double_opt_in" style="width:auto"> ${t("double_opt_in")}</label>
        <button type="submit" id="record-consent">${t("record_consent")}</button></form>` : ""}</section>
    <section class="card"><h3>${t("timeline")}</h3><div class="messages" style="max-height:none">${thread ? thread.messages.map((m) => html`<div class="msg ${m.direction === "out" ? "out" : "in"}">${m.text}<div class="meta">${label("kind", m.channel)} · ${when(m.created_at)}</div>${deliveryLine(m.delivery)}</div>`) : ""}</div></section>`);
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
    if (await attempt(() => api("POST", `/contacts/${id}/consent`, body), t("saved")) !== undefined) reload();
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
      const moves = Object.entries(plan.moves).filter(([, n]) => n).map(([k, n]) => html`<li>${t("merge_" + k)}: ${n}</li>`);
      $("#merge-preview").innerHTML = markup(html`<h3>${t("merge_preview", {source: plan.source.display_name || "#" + source, target: contact.display_name || "#" + id})}</h3>
        <ul id="merge-moves">${either(moves, html`<li class="muted">${t("nothing")}</li>`)}</ul>
        ${plan.conflicts.length ? html`<p><strong>${t("merge_conflicts")}</strong></p><ul id="merge-conflicts">${plan.conflicts.map((c) => html`<li>${c}</li>`)}</ul>` : ""}
        <p class="muted">${t("merge_result")}: ${plan.result.display_name || ""} · ${plan.result.language || ""} · ${(plan.result.tags || []).join(", ")}</p>
        <button type="button" class="primary" id="confirm-merge">${t("merge")}</button>`);
      $("#confirm-merge").onclick = async () => {
        if (await attempt(() => api("POST", `/contacts/${id}/merge`, {source_contact_id: source}), t("merged")) !== undefined) reload();
      };
    };
  }
}
