// The monitoring page.
import * as Charts from "../charts.js";
import {$, $$, api, attempt, either, groupsText, groupsValue, html, label, markup, ME, newestOnly, reload, t, toast, when} from "../core.js";

// ---- monitoring -------------------------------------------------------------------

export async function monitoringPage(main) {
  const readsSettings = ["admin", "manager"].includes(ME.role);
  const settings = readsSettings ? await api("GET", "/settings") : null;
  main.innerHTML = markup(html`<h1>${t("monitoring")}</h1><h2>${t("alerts")}</h2>
    <div class="toolbar row" id="alert-filters">
      <select name="status" aria-label="${t("status")}"><option value="">${t("all")}</option><option value="open">${t("alert_open")}</option><option value="closed">${t("alert_closed")}</option></select>
      <select name="dimension" aria-label="${t("entity")}"><option value="">${t("all_kinds")}</option>${["channel", "campaign", "team", "keyword", "keyword_rule"].map((d) => html`<option value="${d}">${label("dimension", d)}</option>`)}</select></div>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>${t("when")}</th><th>${t("entity")}</th><th>${t("status")}</th><th>${t("peak")}</th><th>${t("volume")}</th><th>${t("terms")}</th></tr></thead>
    <tbody id="alert-rows"></tbody></table></div>
    <section class="card" id="alert-detail"><p class="muted">${t("pick_alert")}</p></section>
    <section class="card" id="monitoring-rules"><h2>${t("rules_title")}</h2><p class="hint">${t("rules_hint")}</p>
      ${settings ? html`<form id="rules-form">${["opinion_products", "compliance_terms"].map((name) => html`<label>${t("setting_" + name)}
        <textarea name="${name}"${ME.role === "admin" ? "" : " readonly"}>${groupsText(settings.values[name])}</textarea><span class="hint">${t("setting_hint_" + name)}</span></label>`)}
        ${ME.role === "admin" ? html`<button type="submit" class="primary" id="save-rules">${t("save")}</button>` : html`<p class="muted">${t("settings_read_only")}</p>`}</form>`
      : html`<p class="muted">${t("rules_settings_only")}</p>`}</section>`);
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
    const slice = `${label("dimension", alert.dimension)} · ${alert.key}`;
    box.innerHTML = markup(html`<h3>${t("alert_trend", {slice})}</h3>
      ${Charts.lines(labels, {[t("negative")]: series.hours.map((h) => (h.volume ? h.negative_share : null))}, t("alert_trend", {slice}),
        first >= 0 ? [{index: first, label: html`#${alert.id}`}] : [], "%")}
      <h3>${t("alert_messages")}</h3><div id="alert-message-list">${either(messages.map((m) => html`<div class="msg in">${m.text || ""}
        <div class="meta">${when(m.created_at)}${m.sentiment ? " · " + (m.sentiment) : ""} · <a href="#/inbox/${m.conversation_id}">${t("open_in_inbox")}</a></div></div>`), html`<p class="muted">${t("nothing")}</p>`)}</div>`);
  };
  const refresh = async () => {
    const params = new URLSearchParams();
    for (const name of ["status", "dimension"]) if (filters.querySelector(`[name=${name}]`).value) params.set(name, filters.querySelector(`[name=${name}]`).value);
    const alerts = await fresh(api("GET", `/opinion/alerts?${params}`));
    if (alerts === undefined) return;
    $("#alert-rows", main).innerHTML = markup(either(alerts.map((a) => html`<tr class="clickable" data-alert="${a.id}"><td>${a.id}</td><td>${when(a.first_hour)}</td><td>${label("dimension", a.dimension)} · ${a.key}</td><td><span class="badge ${a.status === "open" ? "bad" : ""}">${t("alert_" + a.status)}</span></td>
      <td>${Math.round(a.peak_share * 100)}%</td><td>${a.volume}</td><td>${a.top_terms.map((x) => x[0]).join(", ")}</td></tr>`), html`<tr><td colspan="7" class="muted">${t("nothing")}</td></tr>`));
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
    if (await attempt(() => api("PUT", "/settings", {changes}), t("saved"))) reload();
  };
  await refresh();
}
