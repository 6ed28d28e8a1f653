// The contact ways page: WeCom 渠道活码 with their rota, tags, campaign and welcome; one code's adds by day.
import {lines} from "../charts.js";
import {$, api, attempt, commaList, either, html, markup, ME, reload, t} from "../core.js";

const MANAGES = ["admin", "operator"].includes(ME.role);

export async function contactWaysPage(main, [id] = []) {
  const [ways, choices] = await Promise.all([api("GET", "/contact-ways"), MANAGES ? api("GET", "/contact-ways/choices") : null]);
  if (id) return contactWayPage(main, Number(id), choices);
  main.innerHTML = markup(html`<h1>${t("contact_ways")}</h1><p class="hint">${t("contact_ways_hint")}</p>
    <div class="table-wrap"><table id="contact-way-rows"><tr><th>${t("name")}</th><th>state</th><th>${t("on_code")}</th><th>${t("added")}</th><th>${t("lost")}</th><th>${t("net")}</th><th>${t("qr_code")}</th><th></th></tr>
    ${either(ways.map((w) => html`<tr data-way="${w.id}"><td><a href="#/contact-ways/${w.id}">${w.name}</a></td><td><code>${w.state}</code></td>
      <td>${w.on_code.join(", ")}</td><td>${w.added}</td><td>${w.lost}</td><td>${w.added - w.lost}</td>
      <td>${w.qr_code ? html`<a href="${w.qr_code}" target="_blank" rel="noopener" download><img class="qr-thumb" src="${w.qr_code}" alt="${t("qr_code")}" width="56" height="56"></a>` : ""}</td>
      <td>${MANAGES ? html`<button type="button" class="danger" data-delete="${w.id}">${t("delete")}</button>` : ""}</td></tr>`),
      html`<tr><td colspan="8" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    ${MANAGES ? wayForm(choices, null) : ""}`);
  main.querySelectorAll("[data-delete]").forEach((b) => b.onclick = async () => {
    if (confirm(t("contact_way_delete_confirm")) && await attempt(() => api("DELETE", `/contact-ways/${b.dataset.delete}`), t("deleted")) !== undefined) reload();
  });
  if (MANAGES) bindForm(choices, null);
}

async function contactWayPage(main, id, choices) {
  const way = await api("GET", `/contact-ways/${id}`);
  const days = way.days.map((d) => d.day.slice(5));
  main.innerHTML = markup(html`<p><a href="#/contact-ways">← ${t("contact_ways")}</a></p><h1>${way.name}</h1>
    <div class="grid"><section class="card"><dl class="kv" id="way-summary"><dt>state</dt><dd><code>${way.state}</code></dd>
      <dt>${t("on_code")}</dt><dd>${way.on_code.join(", ")}</dd><dt>${t("added")}</dt><dd data-key="added">${way.added}</dd>
      <dt>${t("lost")}</dt><dd data-key="lost">${way.lost}</dd><dt>${t("net")}</dt><dd data-key="net">${way.added - way.lost}</dd>
      <dt>${t("tags")}</dt><dd>${way.tags.join(", ")}</dd></dl></section>
    <section class="card">${way.qr_code ? html`<img id="way-qr" src="${way.qr_code}" alt="${t("qr_code")}" width="180" height="180"><p><a class="button" href="${way.qr_code}" target="_blank" rel="noopener" download>${t("qr_download")}</a></p>` : ""}</section></div>
    <section class="card" id="way-chart">${lines(days, {[t("added")]: way.days.map((d) => d.added), [t("lost")]: way.days.map((d) => d.lost), [t("net")]: way.days.map((d) => d.net)}, t("contact_way_by_day"))}</section>
    ${MANAGES ? wayForm(choices, way) : ""}`);
  if (MANAGES) bindForm(choices, way);
}

function wayForm(choices, way) {
  const rota = way ? way.rota : {users: [], hours: null};
  const welcome = way ? way.welcome : {};
  const mini = welcome.miniprogram || {};
  const users = (accountId) => choices.users.filter((u) => !accountId || u.account_id === accountId);
  const first = way ? way.channel_account_id : (choices.accounts[0] || {}).id;
  const option = (value, label, chosen) => html`<option value="${value}" ${chosen ? html`selected` : ""}>${label}</option>`;
  return html`<form class="card" id="way-form"><h2>${way ? t("edit") : t("new_contact_way")}</h2>
    <div class="grid"><label>${t("wecom_app")}<select name="account" ${way ? html`disabled` : ""}>${choices.accounts.map((a) => option(a.id, a.name, a.id === first))}</select></label>
      <label>${t("name")} *<input name="name" required maxlength="100" value="${way ? way.name : ""}" placeholder="展会2026 海报"></label>
      <label>state *<input name="state" required maxlength="30" pattern="[0-9A-Za-z_\\-]+" value="${way ? way.state : ""}" placeholder="expo2026"></label></div>
    <fieldset><legend>${t("rota")}</legend>
      <div class="grid"><label>${t("rota_reps")}<select name="users" multiple size="4">${users(first).map((u) => option(u.id, `${u.name} (${u.userid})`, rota.users.includes(u.id)))}</select></label>
      <label>${t("team")}<select name="team"><option value="">—</option>${choices.teams.map((x) => option(x.id, x.name, rota.team_id === x.id))}</select></label>
      <label>${t("daily_cap")}<input name="cap" type="number" min="1" max="10000" value="${rota.daily_cap || ""}"></label>
      <label>${t("fallback_rep")}<select name="fallback"><option value="">—</option>${users(first).map((u) => option(u.id, u.name, rota.fallback_user_id === u.id))}</select></label>
      <label>${t("hours_start")}<input name="start" type="time" value="${rota.hours ? rota.hours.start : ""}"></label>
      <label>${t("hours_end")}<input name="end" type="time" value="${rota.hours ? rota.hours.end : ""}"></label>
      <label class="check"><input type="checkbox" name="round_robin" ${rota.round_robin ? html`checked` : ""}> ${t("round_robin")}</label></div></fieldset>
    <div class="grid"><label>${t("tags")}<input name="tags" value="${way ? way.tags.join(", ") : ""}" placeholder="展会2026, vip"></label>
      <label>${t("campaign")}<select name="campaign"><option value="">—</option>${choices.campaigns.map((c) => option(c.id, c.name, way && way.campaign_id === c.id))}</select></label>
      <label class="check"><input type="checkbox" name="skip" ${!way || way.skip_verify ? html`checked` : ""}> ${t("skip_verify")}</label></div>
    <div class="grid"><label>${t("welcome_zh")}<textarea name="welcome_zh">${welcome.zh || ""}</textarea></label><label>${t("welcome_en")}<textarea name="welcome_en">${welcome.en || ""}</textarea></label>
      <label>${t("image_url")}<input name="image_url" type="url" placeholder="https://…/poster.png" value="${welcome.image_url || ""}"></label>
      <label>${t("link_url")}<input name="link_url" type="url" placeholder="https://" value="${welcome.link_url || ""}"></label>
      <label>${t("link_title")}<input name="link_title" maxlength="128" value="${welcome.link_title || ""}"></label></div>
    <fieldset><legend>${t("miniprogram_card")}</legend><p class="hint">${t("miniprogram_hint")}</p>
      <div class="grid"><label>AppID<input name="mp_appid" pattern="wx[0-9a-f]{16}" placeholder="wx…" value="${mini.appid || ""}"></label>
      <label>${t("miniprogram_page")}<input name="mp_page" maxlength="300" placeholder="pages/index/index" value="${mini.page || ""}"></label>
      <label>${t("miniprogram_title")}<input name="mp_title" maxlength="64" value="${mini.title || ""}"></label></div></fieldset>
    <button type="submit" class="primary">${t("save")}</button></form>`;
}

function bindForm(choices, way) {
  const form = $("#way-form");
  if (!form) return;
  const number = (value) => (value ? Number(value) : null);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const hours = form.start.value && form.end.value ? {start: form.start.value, end: form.end.value, zone: "Asia/Shanghai"} : null;
    const value = (name) => form[name].value.trim() || null;
    const welcome = {zh: value("welcome_zh"), en: value("welcome_en"), image_url: value("image_url"), link_url: value("link_url"),
                     link_title: value("link_title"),
                     miniprogram: value("mp_appid") ? {appid: value("mp_appid"), page: value("mp_page"), title: value("mp_title")} : null};
    const body = {channel_account_id: way ? way.channel_account_id : Number(form.account.value), name: form.name.value.trim(), state: form.state.value.trim(),
                  rota: {users: [...form.users.selectedOptions].map((o) => Number(o.value)), team_id: number(form.team.value),
                         daily_cap: number(form.cap.value), fallback_user_id: number(form.fallback.value), hours,
                         round_robin: form.round_robin.checked},
                  tags: commaList(form.tags.value), campaign_id: number(form.campaign.value), welcome, skip_verify: form.skip.checked};
    const saved = await attempt(() => api(way ? "PUT" : "POST", way ? `/contact-ways/${way.id}` : "/contact-ways", body), t("saved"));
    if (saved) { location.hash = `#/contact-ways/${saved.id}`; reload(); }
  };
}
