// The campaigns page.
import {$, $$, api, attempt, CHANNEL_KINDS, commaList, either, html, label, markup, ME, newestOnly, reload, t, toast, when} from "../core.js";

// A result's label where its key names something else in the catalogue.
const RESULT_LABELS = {awaiting_confirmation: "awaiting_send"};

// ---- campaigns ------------------------------------------------------------------------

export async function campaignsPage(main, rest) {
  if (rest[0] === "new") return campaignBuilder(main, null, await api("GET", "/quick-replies").catch(() => []));
  if (rest[0] && rest[1] === "edit") {
    return campaignBuilder(main, await api("GET", `/campaigns/${Number(rest[0])}`), await api("GET", "/quick-replies").catch(() => []));
  }
  if (rest[0]) return campaignResults(main, Number(rest[0]));
  const campaigns = await api("GET", "/campaigns");
  const builder = ["admin", "operator"].includes(ME.role);
  main.innerHTML = markup(html`<h1>${t("campaigns")}</h1>${builder ? html`<div class="toolbar"><a class="button primary" href="#/campaigns/new" id="new-campaign">${t("new_campaign")}</a></div>` : ""}
    <div class="table-wrap"><table><tr><th>#</th><th>${t("name")}</th><th>${t("status")}</th><th>${t("step")}</th><th></th></tr>
    ${either(campaigns.map((c) => html`<tr><td>${c.id}</td><td><a href="#/campaigns/${c.id}">${c.name}</a></td><td><span class="badge" data-status="${c.status}">${label("status", c.status)}</span></td>
      <td>${c.steps.length}</td><td>${builder ? (c.status === "active" ? html`<button type="button" data-pause="${c.id}">${t("pause")}</button>`
      : (c.status === "draft" || c.status === "paused" ? html`<button type="button" class="primary" data-start="${c.id}">${t("start")}</button>` : "")) : ""}</td></tr>`), html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>`);
  $$("[data-start]").forEach((b) => b.onclick = async () => {
    if (await attempt(() => api("POST", `/campaigns/${b.dataset.start}/status`, {status: "active"}), t("started_ok")) !== undefined) reload();
  });
  $$("[data-pause]").forEach((b) => b.onclick = async () => {
    if (await attempt(() => api("POST", `/campaigns/${b.dataset.pause}/status`, {status: "paused"}), t("paused_ok")) !== undefined) reload();
  });
}

const capsText = (caps) => [caps.per_contact ? t("per_person", {n: caps.per_contact.messages, d: caps.per_contact.days}) : "",
  caps.per_day ? t("per_day", {n: caps.per_day}) : ""].filter(Boolean).join(" · ") || t("caps_none");

async function campaignResults(main, id) {
  const [campaign, results] = await Promise.all([api("GET", `/campaigns/${id}`), api("GET", `/campaigns/${id}/results`)]);
  const builder = ["admin", "operator"].includes(ME.role);
  const actions = !builder ? "" : html`${[campaign.status === "active" ? ["paused", "pause"] : null,
    ["draft", "paused"].includes(campaign.status) ? ["active", "start"] : null,
    campaign.status !== "ended" ? ["ended", "end_campaign"] : null].filter(Boolean)
    .map(([status, label]) => html`<button type="button" data-set-status="${status}"${status === "active" ? html` class="primary"` : ""}>${t(label)}</button>`)}${
    campaign.status === "draft" ? html`<a class="button" id="edit-campaign" href="#/campaigns/${id}/edit">${t("edit")}</a>` : ""}<button type="button" id="copy-campaign">${t("copy_campaign")}</button>`;
  const stepText = (step) => [step.channel || t("any_channel"), step.delay_minutes ? t("after_minutes", {n: step.delay_minutes}) : "",
    step.window_start ? `${step.window_start}-${step.window_end}` : "", step.condition ? JSON.stringify(step.condition) : ""].filter(Boolean).join(" · ");
  main.innerHTML = markup(html`<h1>${campaign.name} <span class="badge" id="campaign-status" data-status="${campaign.status}">${label("status", campaign.status)}</span></h1>
    <div class="toolbar row">${actions}</div>
    <p class="muted" id="campaign-caps">${t("caps")}: ${capsText(campaign.caps)}</p>
    <section class="card"><h3>${t("results")}</h3><dl class="kv">${["enrolled", "sent", "delivered", "awaiting_confirmation", "replied", "opted_out", "converted"]
      .map((k) => html`<dt>${t(RESULT_LABELS[k] || k)}</dt><dd>${results[k]}</dd>`)}</dl></section>
    <div class="table-wrap"><table><tr><th>${t("step")}</th><th>${t("name")}</th><th></th>${["sent", "delivered", "awaiting_confirmation", "replied", "opted_out", "converted"].map((k) => html`<th>${t(RESULT_LABELS[k] || k)}</th>`)}</tr>
    ${results.steps.map((r) => { const step = campaign.steps.find((x) => x.position === r.position) || {};
      return html`<tr><td>${r.position}</td><td>${r.name}<div class="hint">${Object.values(step.template || {})[0] || ""}</div></td><td class="muted">${stepText(step)}${Object.keys(step.channel_templates || {}).length ? html` · ${t("worded_for", {kinds: Object.keys(step.channel_templates).join(", ")})}` : ""}</td>${["sent", "delivered", "awaiting_confirmation", "replied", "opted_out", "converted"].map((k) => html`<td>${r[k]}</td>`)}</tr>`; })}</table></div>
    <h2>${t("enrolments")}</h2>
    <div class="toolbar row"><select id="enrolment-status" aria-label="${t("status")}"><option value="">${t("all")}</option>${["active", "completed", "exited"].map((x) => html`<option value="${x}">${t("enrolment_" + x)}</option>`)}</select></div>
    <div class="table-wrap"><table><thead><tr><th>${t("contacts")}</th><th>${t("status")}</th><th>${t("next_step")}</th><th>${t("due")}</th><th>${t("note")}</th></tr></thead><tbody id="enrolment-rows"></tbody></table></div>
    <button type="button" id="enrolments-more" hidden>${t("more")}</button>`);
  const copyButton = $("#copy-campaign", main);
  if (copyButton) copyButton.onclick = async () => {
    const copied = await attempt(() => api("POST", `/campaigns/${id}/copy`), t("created_ok"));
    if (copied) location.hash = `#/campaigns/${copied.id}/edit`;
  };
  $$("[data-set-status]", main).forEach((b) => b.onclick = async () => {
    if (b.dataset.setStatus === "ended" && !confirm(t("end_confirm", {name: campaign.name}))) return;
    if (await attempt(() => api("POST", `/campaigns/${id}/status`, {status: b.dataset.setStatus}), t("saved")) !== undefined) reload();
  });
  let offset = 0;
  const fresh = newestOnly();
  const load = async (more) => {
    const status = $("#enrolment-status", main).value;
    offset = more ? offset : 0;
    const rows = await fresh(api("GET", `/campaigns/${id}/enrolments?limit=100&offset=${offset}${status ? `&status=${status}` : ""}`));
    if (rows === undefined) return;
    offset += rows.length;
    const lines = rows.map((e) => html`<tr><td><a href="#/contacts/${e.contact_id}">#${e.contact_id}</a></td><td><span class="badge">${t("enrolment_" + e.status)}</span>${e.exit_reason ? html` <span class="muted">${label("exit", e.exit_reason)}</span>` : ""}</td>
      <td>${e.next_position ?? ""}</td><td>${when(e.next_due_at)}</td><td class="muted">${e.note || ""}</td></tr>`);
    if (more) $("#enrolment-rows", main).insertAdjacentHTML("beforeend", markup(lines));
    else $("#enrolment-rows", main).innerHTML = markup(either(lines, html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`));
    $("#enrolments-more", main).hidden = rows.length < 100;
  };
  $("#enrolment-status", main).onchange = () => load(false);
  $("#enrolments-more", main).onclick = () => load(true);
  await load(false);
}

// A new campaign, or a draft to change (`draft`, as the API reads it); a step's words may start
// from a quick reply (its {link} written in, {company} left out: campaigns know name, rep, campaign).
function campaignBuilder(main, draft = null, quickReplies = []) {
  main.innerHTML = markup(html`<h1>${draft ? t("edit_user", {name: draft.name}) : t("new_campaign")}</h1>
    <form id="campaign-form" class="card" novalidate>
      <label>${t("name")}<input name="name" required maxlength="200"></label>
      <h3>${t("audience")}</h3>
      <div class="step-grid"><label>${t("tags")}<input name="tags"></label><label>${t("stages")}<input name="stages"></label>
        <label>${t("channels_filter")}<input name="channels"></label><label>${t("min_score")}<input name="min_score" type="number" min="0"></label></div>
      <label class="row"><input type="checkbox" name="consent" checked style="width:auto"> ${t("consent_only")}</label>
      <h3>${t("step")}</h3><div id="steps"></div>
      <button type="button" id="add-step">${t("add_step")}</button>
      <h3>${t("caps")}</h3><div class="step-grid">
        <label>${t("cap_messages")}<input name="cap_messages" type="number" min="1" max="1000"></label>
        <label>${t("cap_days")}<input name="cap_days" type="number" min="0.1" max="365" step="any"></label>
        <label>${t("cap_per_day")}<input name="cap_per_day" type="number" min="1"></label></div>
      <div class="hint">${t("caps_hint")}</div>
      <h3>${t("exits")}</h3><div class="row"><label class="row"><input type="checkbox" name="exit_reply" checked style="width:auto"> ${t("exit_reply")}</label>
        <label class="row"><input type="checkbox" name="exit_conversion" checked style="width:auto"> ${t("exit_conversion")}</label></div>
      <div class="row"><button type="button" id="preview">${t("preview")}</button><button type="submit" class="primary" id="create-campaign">${t(draft ? "save" : "create_campaign")}</button></div>
      <div id="preview-out" class="card" hidden></div>
    </form>`);
  const form = $("#campaign-form");
  const addStep = (initial = null) => {
    const n = $$("#steps .step").length + 1;
    const div = document.createElement("div");
    div.className = "step";
    div.innerHTML = markup(html`<div class="row"><strong>${t("step")} ${n}</strong><span class="spacer" style="flex:1"></span><button type="button" class="link remove-step">${t("remove")}</button></div>
      <div class="step-grid"><label>${t("name")}<input name="step_name" value="${t("step")} ${n}"></label>
        <label>${t("channel")}<select name="step_channel"><option value="">${t("any_channel")}</option>${CHANNEL_KINDS.map((k) => html`<option value="${k}">${label("kind", k)}</option>`)}</select></label>
        <label>${t("delay")}<input name="delay" type="number" min="0" value="${n === 1 ? 0 : 1440}"></label>
        <label>${t("window_start")}<input name="window_start" placeholder="09:00" pattern="\\d{2}:\\d{2}"></label>
        <label>${t("window_end")}<input name="window_end" placeholder="18:00" pattern="\\d{2}:\\d{2}"></label>
        <label>${t("delay_from")}<select name="delay_from"><option value="previous">${t("from_previous")}</option><option value="enrolment">${t("from_enrolment")}</option></select></label>
        <label>${t("condition")}<select name="condition">${["", "not_replied", "replied", "clicked", "not_clicked", "stages", "tag"]
          .map((c) => html`<option value="${c}">${t(c ? "cond_" + c : "cond_none")}</option>`)}</select></label>
        <label class="cond-value" hidden>${t("cond_value")}<input name="condition_value"></label>
        <label class="cond-else" hidden>${t("cond_else")}<select name="else_position"></select></label></div>
      ${quickReplies.length ? html`<label>${t("from_quick_reply")}<select class="from-quick"><option value=""></option>${quickReplies.map((r) => html`<option value="${r.id}">${r.shortcut ? r.shortcut + " · " : ""}${r.title}</option>`)}</select></label>` : ""}
      <label>${t("template_zh")}<textarea name="template_zh">{name}您好！</textarea></label>
      <label>${t("template_en")}<textarea name="template_en">Hi {name}!</textarea></label><div class="hint">${t("variables")}</div>
      <div class="channel-wordings"></div>
      <div class="row"><select class="wording-kind">${CHANNEL_KINDS.map((k) => html`<option value="${k}">${label("kind", k)}</option>`)}</select>
        <button type="button" class="add-wording">${t("add_channel_wording")}</button></div>`);
    const fromQuick = div.querySelector(".from-quick");
    if (fromQuick) fromQuick.onchange = () => {
      const reply = quickReplies.find((r) => String(r.id) === fromQuick.value);
      if (!reply) return;
      const words = (text) => (text || "").replaceAll("{link}", reply.link_url || "").replaceAll("{company}", "").trim();
      div.querySelector("[name=template_zh]").value = words(reply.texts.zh);
      div.querySelector("[name=template_en]").value = words(reply.texts.en);
    };
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
      block.innerHTML = markup(html`<div class="row"><strong>${t("channel_wording", {kind})}</strong><span style="flex:1"></span><button type="button" class="link">${t("remove")}</button></div>
        <label>${t("template_zh")}<textarea name="wording_zh"></textarea></label><label>${t("template_en")}<textarea name="wording_en"></textarea></label>`);
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
    pick.innerHTML = markup(html`<option value="">${t("cond_leave")}</option>${all.slice(i + 1)
      .map((_, k) => html`<option value="${i + k + 2}"${String(i + k + 2) === chosen ? " selected" : ""}>${t("go_to_step", {n: i + k + 2})}</option>`)}`);
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
    out.innerHTML = markup(html`<strong id="audience-count">${t(result.count === 1 ? "audience_count_one" : "audience_count", {n: result.count})}</strong>
      <div class="muted">${result.sample.map((c) => (c.name || "#" + c.id)).join(", ")}</div>
      ${result.previews.map((p, i) => html`<h3>${t("step")} ${i + 1}</h3>${Object.entries(p).map(([lang, text]) => html`<div class="preview-box">${lang}: ${text}</div>`)}`)}`);
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
