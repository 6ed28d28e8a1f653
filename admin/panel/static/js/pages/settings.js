// The settings page.
import {$, $$, api, attempt, groupsText, groupsValue, html, label, markup, ME, reload, t, toast} from "../core.js";

const SETTING_KINDS = {
  sla_first_response_minutes: "number", sla_escalate_minutes: "number", lead_hot_score: "number",
  lead_first_response_minutes: "number", lead_escalate_minutes: "number", marketing_cap_count: "number",
  marketing_cap_days: "number", negative_alert_confidence: "number", marketing_quiet_hours: "text",
  lead_routing: ["claim", "round_robin", "load"], opinion_products: "groups", compliance_terms: "groups",
  tag_keywords: "groups", stage_tags: "groups", campaign_tags: "groups", wecom_confirm_remind_minutes: "number",
  follow_up_untouched_days: "number", follow_up_quote_days: "number", lead_scoring: "scoring",
};
// The events a lead is scored on (crm_core.leads.service.SCORING_EVENTS): one row each; no points, no rule.
const SCORING_EVENTS = ["buying_signal", "event_registration", "opt_in", "message", "order", "stated_contact"];
const scoringTable = (name, rules, readonly) => {
  const byEvent = Object.fromEntries((rules || []).map((r) => [r.event, r]));
  const off = readonly ? " disabled" : "";
  return html`<table class="scoring" data-name="${name}"><tr><th>${t("scoring_event")}</th><th>${t("scoring_points")}</th><th>${t("scoring_repeatable")}</th><th>${t("scoring_cap")}</th></tr>
    ${SCORING_EVENTS.map((e) => { const r = byEvent[e] || {}; return html`<tr data-event="${e}"><td>${label("scoring_event", e)}</td>
      <td><input type="number" name="points" step="1" min="-100" max="1000" value="${r.points ?? ""}"${off}></td>
      <td><input type="checkbox" name="repeatable" style="width:auto"${r.repeatable ? " checked" : ""}${off}></td>
      <td><input type="number" name="cap" step="1" min="1" value="${r.cap ?? ""}"${off}></td></tr>`; })}</table>`;
};
const scoringValue = (table) => $$("tr[data-event]", table).filter((tr) => $("[name=points]", tr).value !== "").map((tr) => ({
  event: tr.dataset.event, points: Number($("[name=points]", tr).value), repeatable: $("[name=repeatable]", tr).checked,
  cap: $("[name=cap]", tr).value === "" ? null : Number($("[name=cap]", tr).value)}));
const WIDE_SETTINGS = ["lead_stages", "lead_scoring", "deal_stages"];
export async function settingsPage(main) {
  const data = await api("GET", "/settings");
  const admin = ME.role === "admin";
  const field = (name) => {
    const kind = SETTING_KINDS[name] || "text", value = data.values[name], env = data.environment[name];
    const changed = data.changed_in_panel.includes(name);
    const input = Array.isArray(kind) ? html`<select name="${name}"${admin ? "" : " disabled"}>${kind.map((o) => html`<option value="${o}"${o === value ? " selected" : ""}>${label(name === "lead_routing" ? "routing" : name, o)}</option>`)}</select>`
      : kind === "groups" ? html`<textarea name="${name}"${admin ? "" : " readonly"}>${groupsText(value)}</textarea>`
      : kind === "scoring" ? scoringTable(name, value, !admin)
      : html`<input name="${name}" type="${kind}" step="any" value="${value ?? ""}"${admin ? "" : " readonly"}>`;
    const envText = kind === "groups" ? (env ? groupsText(env).replace(/\n/g, "; ") : t("setting_default"))
      : kind === "scoring" ? (env || []).map((r) => `${label("scoring_event", r.event)} ${r.points}${r.repeatable ? "×" : ""}${r.cap ? " ≤" + r.cap : ""}`).join(", ")
      : (env ?? "");
    return html`<label${WIDE_SETTINGS.includes(name) ? html` class="wide"` : ""}>${t("setting_" + name)}${changed ? html` <span class="badge warn">${t("changed_in_panel")}</span>` : ""}${input}
      <span class="hint">${t("setting_hint_" + name)} · ${t("environment")}: ${envText}${changed && admin ? html` · <a href="#" data-reset="${name}">${t("reset")}</a>` : ""}</span></label>`;
  };
  main.innerHTML = markup(html`<h1>${t("settings")}</h1><form id="settings-form">
    ${Object.entries(data.sections).map(([section, names]) => html`<section class="card"><h2>${t("section_" + section)}</h2>
      <div class="${["monitoring", "tagging"].includes(section) ? "" : "step-grid"}">${names.map(field)}</div></section>`)}
    ${admin ? html`<button type="submit" class="primary" id="save-settings">${t("save")}</button>` : html`<p class="muted">${t("settings_read_only")}</p>`}</form>`);
  const form = $("#settings-form");
  const read = (name) => {
    const kind = SETTING_KINDS[name];
    if (kind === "scoring") return scoringValue($(`table.scoring[data-name="${name}"]`, form));
    const el = form.elements[name];
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
    if (await attempt(() => api("PUT", "/settings", {changes}), t("saved"))) reload();
  };
  $$("[data-reset]").forEach((a) => a.onclick = async (event) => {
    event.preventDefault();
    if (await attempt(() => api("PUT", "/settings", {changes: {[a.dataset.reset]: null}}), t("saved"))) reload();
  });
}
