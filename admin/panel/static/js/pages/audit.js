// The audit page.
import {$, api, detailsText, either, html, label, markup, newestOnly, t, when} from "../core.js";

const AUDIT_ENTITIES = ["user", "team", "contact", "lead", "conversation", "campaign", "enrolment", "channel_account",
  "faq_entry", "event", "settings", "outbox_message"];
export async function auditPage(main) {
  const users = await api("GET", "/users");
  main.innerHTML = markup(html`<h1>${t("audit")}</h1>
    <form class="toolbar row" id="audit-filters">
      <input name="action" placeholder="${t("audit_action_hint")}" aria-label="${t("action")}">
      <select name="entity_type" aria-label="${t("entity")}"><option value="">${t("audit_all_entities")}</option>${AUDIT_ENTITIES.map((k) => html`<option value="${k}">${label("entity", k)}</option>`)}</select>
      <input name="entity_id" placeholder="#" aria-label="#" style="width:6em">
      <select name="actor_user_id" aria-label="${t("who")}"><option value="">${t("audit_everyone")}</option>${users.map((u) => html`<option value="${u.id}">${u.display_name || u.username}</option>`)}</select>
      <button type="submit">${t("search")}</button></form>
    <div class="table-wrap"><table><thead><tr><th>${t("when")}</th><th>${t("who")}</th><th>${t("action")}</th><th>${t("entity")}</th><th>${t("details")}</th></tr></thead>
    <tbody id="audit-rows"></tbody></table></div>
    <button type="button" id="audit-more" hidden>${t("more")}</button>`);
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
    const rows = entries.map((e) => html`<tr><td>${when(e.at)}</td><td>${e.actor}</td><td title="${e.action}">${label("action", e.action)}</td><td>${label("entity", e.entity_type)} ${e.entity_id || ""}</td><td class="details">${detailsText(e.details)}</td></tr>`);
    const body = $("#audit-rows", main);
    if (more) body.insertAdjacentHTML("beforeend", markup(rows));
    else body.innerHTML = markup(either(rows, html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`));
    if (entries.length) oldest = entries[entries.length - 1].id;
    $("#audit-more", main).hidden = entries.length < 100;
  };
  form.onsubmit = (event) => { event.preventDefault(); load(false); };
  form.elements.entity_type.onchange = form.elements.actor_user_id.onchange = () => load(false);
  $("#audit-more", main).onclick = () => load(true);
  await load(false);
}
