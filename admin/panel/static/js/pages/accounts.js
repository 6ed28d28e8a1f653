// The accounts page: companies and, for one, everything about it across channels: its people,
// their conversations, its deals and tasks, its subsidiaries.
import {$, api, attempt, either, html, label, LANG, markup, reload, t, when} from "../core.js";

const SIZES = ["1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+"];

export async function accountsPage(main, rest) {
  if (rest[0]) return accountPage(main, Number(rest[0].split("?")[0]));
  const accounts = await api("GET", "/accounts");
  main.innerHTML = markup(html`<h1>${t("accounts")}</h1><p class="hint">${t("accounts_hint")}</p>
    <div class="table-wrap"><table id="account-rows"><tr><th>${t("name")}</th><th>${t("industry")}</th><th>${t("region")}</th><th>${t("size")}</th><th>${t("segment")}</th></tr>
    ${either(accounts.map((a) => html`<tr data-account="${a.id}"><td><a href="#/accounts/${a.id}">${a.name}</a></td><td>${a.industry || ""}</td><td>${a.region || ""}</td><td>${a.size || ""}</td><td>${a.segment}</td></tr>`),
      html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    <form class="card" id="account-form"><h2>${t("new_account")}</h2><div class="grid">
      <label>${t("name")} *<input name="name" required maxlength="200"></label><label>${t("industry")}<input name="industry" maxlength="100"></label>
      <label>${t("region")}<input name="region" maxlength="100"></label>
      <label>${t("size")}<select name="size"><option value=""></option>${SIZES.map((s) => html`<option>${s}</option>`)}</select></label>
      <label>${t("parent_account")}<select name="parent"><option value=""></option>${accounts.map((a) => html`<option value="${a.id}">${a.name}</option>`)}</select></label></div>
      <button type="submit" class="primary">${t("save")}</button></form>`);
  const form = $("#account-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const value = (name) => form[name].value.trim() || null;
    const body = {name: form.name.value.trim(), industry: value("industry"), region: value("region"), size: value("size"),
                  parent_account_id: form.parent.value ? Number(form.parent.value) : null};
    if (await attempt(() => api("POST", "/accounts", body), t("saved"))) reload();
  };
}

async function accountPage(main, id) {
  const a = await api("GET", `/accounts/${id}`);
  main.innerHTML = markup(html`<h1>${a.name} <span class="badge">${a.segment}</span></h1>
    <section class="card"><dl class="kv"><dt>${t("industry")}</dt><dd>${a.industry || ""}</dd><dt>${t("region")}</dt><dd>${a.region || ""}</dd>
      <dt>${t("size")}</dt><dd>${a.size || ""}</dd>${a.parent_account_id ? html`<dt>${t("parent_account")}</dt><dd><a href="#/accounts/${a.parent_account_id}">#${a.parent_account_id}</a></dd>` : ""}</dl>
      ${a.subsidiaries.length ? html`<p>${t("subsidiaries")}: ${a.subsidiaries.map((s) => html`<a href="#/accounts/${s.id}">${s.name}</a> `)}</p>` : ""}
      <form id="account-contact" class="row"><label style="margin:0">${t("add_contact")}<input name="contact" type="number" min="1" placeholder="#"></label><button type="submit">${t("save")}</button></form></section>
    <div class="grid"><section class="card"><h3>${t("contacts")}</h3><div id="account-contacts">${either(a.contacts.map((c) => html`<div><a href="#/contacts/${c.id}">${c.name}</a></div>`), html`<p class="muted">${t("nothing")}</p>`)}</div>
      <h3>${t("conversations")}</h3><div id="account-conversations">${either(a.conversations.map((c) => html`<div><a href="#/inbox/${c.id}">#${c.id}</a> ${label("status", c.status)} · ${when(c.last_message_at)}</div>`), html`<p class="muted">${t("nothing")}</p>`)}</div></section>
    <section class="card"><h3>${t("deals")}</h3><div id="account-deals">${either(a.deals.map((d) => html`<div><a href="#/deals?deal=${d.id}">${d.title}</a> · ${Math.round(d.amount).toLocaleString()} ${d.currency} · ${d.stage_names[LANG] || label("deal_stage", d.stage)} (${d.probability}%)</div>`), html`<p class="muted">${t("nothing")}</p>`)}</div>
      <h3>${t("tasks")}</h3><div id="account-tasks">${either(a.tasks.map((x) => html`<div>T${x.id} ${when(x.due_at)} · ${x.title}${x.done_at ? html` <span class="badge ok">${t("task_done")}</span>` : ""}</div>`), html`<p class="muted">${t("nothing")}</p>`)}</div></section></div>`);
  $("#account-contact").onsubmit = async (event) => {
    event.preventDefault();
    const contact = Number(event.target.contact.value);
    if (contact && await attempt(() => api("PATCH", `/accounts/${id}`, {add_contact_ids: [contact]}), t("saved"))) reload();
  };
}
