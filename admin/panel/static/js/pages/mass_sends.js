// The mass sends page: WeCom 群发 to customers, one task per rep, and what WeCom says became of each.
import {$, api, attempt, commaList, either, html, label, markup, ME, reload, t, when} from "../core.js";

const MANAGES = ["admin", "operator"].includes(ME.role);
const TONE = {sent: "good", waiting: "warn", pending: "warn", not_contact: "bad", over_limit: "bad", failed: "bad"};

export async function massSendsPage(main, [id] = []) {
  if (id) return massSendPage(main, Number(id));
  const [sends, choices] = await Promise.all([api("GET", "/mass-sends"), MANAGES ? api("GET", "/contact-ways/choices") : null]);
  main.innerHTML = markup(html`<h1>${t("mass_sends")}</h1><p class="hint">${t("mass_sends_hint")}</p>
    <div class="table-wrap"><table id="mass-send-rows"><tr><th>${t("name")}</th><th>${t("created")}</th><th>${t("reps_sent")}</th>${["sent", "waiting", "not_contact", "over_limit"].map((k) => html`<th>${label("mass_target", k)}</th>`)}</tr>
    ${either(sends.map((s) => html`<tr data-send="${s.id}" data-origin="${s.origin}"><td><a href="#/mass-sends/${s.id}">${s.name}</a>${s.origin === "hub" ? "" : html`<br><span class="muted">${s.origin === "personal" ? t("mass_by_rep", {rep: s.creator || ""}) : label("mass_origin", s.origin)}</span>`}</td><td>${when(s.created_at)}</td>
      <td data-key="reps">${t("n_of_m", {n: s.reps_sent, m: s.reps})}</td>${["sent", "waiting", "not_contact", "over_limit"].map((k) => html`<td>${s.customers[k]}</td>`)}</tr>`),
      html`<tr><td colspan="7" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    ${MANAGES ? html`<form class="card" id="mass-form"><h2>${t("new_mass_send")}</h2>
      <div class="grid"><label>${t("wecom_app")}<select name="account">${choices.accounts.map((a) => html`<option value="${a.id}">${a.name}</option>`)}</select></label>
        <label>${t("name")} *<input name="name" required maxlength="100"></label>
        <label>${t("tags")}<input name="tags" placeholder="vip"></label>
        <label class="check"><input type="checkbox" name="groups"> ${t("to_their_groups")}</label>
        <label>${t("rota_reps")}<select name="users" multiple size="4">${choices.users.map((u) => html`<option value="${u.id}">${u.name} (${u.userid})</option>`)}</select></label></div>
      <label>${t("mass_text")} *<textarea name="text" required maxlength="4000"></textarea></label>
      <p class="hint">${t("mass_send_rule")}</p>
      <button type="submit" class="primary">${t("send")}</button></form>` : ""}`);
  await momentsSection(main, choices);
  const form = $("#mass-form");
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const made = await attempt(() => api("POST", "/mass-sends", {channel_account_id: Number(form.account.value), name: form.name.value.trim(),
      text: form.text.value.trim(), to_groups: form.groups.checked, tags: form.groups.checked ? [] : commaList(form.tags.value), user_ids: [...form.users.selectedOptions].map((o) => Number(o.value))}), t("saved"));
    if (made) location.hash = `#/mass-sends/${made.id}`;
  };
}

async function massSendPage(main, id) {
  const send = await api("GET", `/mass-sends/${id}`);
  const badge = (state) => html`<span class="badge ${TONE[state] || ""}">${label("mass_target", state)}</span>`;
  main.innerHTML = markup(html`<p><a href="#/mass-sends">← ${t("mass_sends")}</a></p><h1>${send.name}</h1>
    <section class="card"><p>${send.text}</p><dl class="kv" id="mass-summary"><dt>${t("reps_sent")}</dt><dd data-key="reps">${t("n_of_m", {n: send.reps_sent, m: send.reps})}</dd>
      ${["sent", "waiting", "not_contact", "over_limit"].map((k) => html`<dt>${label("mass_target", k)}</dt><dd data-key="${k}">${send.customers[k]}</dd>`)}</dl></section>
    <div class="table-wrap"><table id="mass-tasks"><tr><th>${t("rep")}</th><th>${t("status")}</th><th>${t(send.chat_type === "group" ? "customer_groups" : "customer")}</th></tr>
    ${send.tasks.map((task) => html`<tr data-rep="${task.sender_userid}"><td>${task.rep}</td><td>${badge(task.status)}${task.reason ? html` ${task.reason}` : ""}</td>
      <td>${task.customers.map((c) => html`<div>${c.name} ${badge(c.state)}</div>`)}</td></tr>`)}
    ${send.skipped.length ? html`<tr><td>—</td><td>${badge("over_limit")}</td><td>${send.skipped.map((c) => html`<div>${c.name}</div>`)}</td></tr>` : ""}</table></div>`);
}

// 朋友圈: posts for reps to publish to their customers' moments, and who published them.
async function momentsSection(main, choices) {
  const moments = await api("GET", "/moments");
  const section = document.createElement("section");
  section.id = "moments";
  const published = (m) => Object.values(m.published).filter(Boolean).length;
  const total = (m, key) => Object.values(m.reach).reduce((sum, r) => sum + (r[key] || 0), 0);
  section.innerHTML = markup(html`<h2>${t("moments")}</h2><p class="hint">${t("moments_hint")}</p>
    <div class="table-wrap"><table id="moment-rows"><tr><th>${t("mass_text")}</th><th>${t("tags")}</th><th>${t("status")}</th><th>${t("reps_published")}</th><th>${t("moment_reach")}</th><th>${t("created")}</th></tr>
    ${either(moments.map((m) => html`<tr data-moment="${m.id}" data-origin="${m.origin}"><td>${m.text}${m.image_urls.length ? html` <span class="muted">🖼 ${m.image_urls.length}</span>` : ""}
      <br><span class="muted">${m.origin === "personal" ? t("moment_by_rep", {rep: m.creator || ""}) : label("moment_origin", m.origin)}</span></td><td>${m.tags.join(", ")}</td>
      <td><span class="badge ${m.status === "failed" ? "bad" : m.status === "created" ? "good" : "warn"}">${label("moment", m.status)}</span>${m.reason ? html` ${m.reason}` : ""}</td>
      <td data-key="published">${t("n_of_m", {n: published(m), m: Object.keys(m.published).length})}</td>
      <td data-key="reach">${t("moment_reach_counts", {customers: total(m, "customers"), likes: total(m, "likes"), comments: total(m, "comments")})}</td><td>${when(m.created_at)}</td></tr>`),
      html`<tr><td colspan="6" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    ${choices ? html`<form class="card" id="moment-form"><h3>${t("new_moment")}</h3>
      <div class="grid"><label>${t("wecom_app")}<select name="account">${choices.accounts.map((a) => html`<option value="${a.id}">${a.name}</option>`)}</select></label>
        <label>${t("tags")}<input name="tags" placeholder="vip"></label><label>${t("link_url")}<input name="link_url" placeholder="https://"></label>
        <label>${t("rota_reps")}<select name="users" multiple size="4">${choices.users.map((u) => html`<option value="${u.id}">${u.name} (${u.userid})</option>`)}</select></label></div>
      <label>${t("mass_text")} *<textarea name="text" required maxlength="2000"></textarea></label>
      <label>${t("moment_pictures")}<textarea name="pictures" rows="3" placeholder="https://…/1.png"></textarea></label><p class="hint">${t("moment_pictures_hint")}</p>
      <button type="submit" class="primary">${t("send")}</button></form>` : ""}`);
  main.appendChild(section);
  const form = $("#moment-form", section);
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const made = await attempt(() => api("POST", "/moments", {channel_account_id: Number(form.account.value), text: form.text.value.trim(),
      link_url: form.link_url.value.trim() || null, tags: commaList(form.tags.value), user_ids: [...form.users.selectedOptions].map((o) => Number(o.value)),
      image_urls: form.pictures.value.split("\n").map((line) => line.trim()).filter(Boolean)}), t("saved"));
    if (made) reload();
  };
}
