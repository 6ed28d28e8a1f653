// The deals page: the pipeline as a kanban (drag a card to another stage; totals per column),
// the forecast (open deals weighted by their stage's probability, by month and by rep), a new deal.
import {$, $$, api, attempt, either, html, label, LANG, markup, reload, t} from "../core.js";

const money = (amounts) => either(Object.entries(amounts).map(([c, a]) => `${Math.round(a).toLocaleString()} ${c}`), ["0"]).join(" · ");

export async function dealsPage(main) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const [board, forecast] = await Promise.all([api("GET", "/deals/board"), api("GET", "/deals/forecast")]);
  const focus = Number(params.get("deal")) || null;
  main.innerHTML = markup(html`<h1>${t("deals")}</h1><p class="hint">${t("deals_hint")}</p>
    <div class="kanban" id="kanban" style="display:flex;gap:10px;overflow-x:auto;align-items:flex-start">
    ${board.map((col) => html`<section class="card kanban-column" data-stage="${col.stage}" style="min-width:200px;flex:1">
      <h3>${col.names[LANG] || label("deal_stage", col.stage)} <span class="muted">${col.probability}%</span></h3>
      <div class="muted column-total" title="${t("deal_weighted")}: ${money(col.weighted)}">${col.count} · ${money(col.amount)}</div>
      ${col.deals.map((d) => html`<div class="card deal-card${d.id === focus ? " focus" : ""}" draggable="${d.status === "open" ? "true" : "false"}" data-deal="${d.id}"
        style="margin:6px 0;padding:8px;cursor:${d.status === "open" ? "grab" : "default"}${d.id === focus ? ";outline:2px solid #4a7bd0" : ""}">
        <strong>${d.title}</strong><div>${Math.round(d.amount).toLocaleString()} ${d.currency}</div>
        <div class="muted">${d.owner_name || ""}${d.expected_close ? " · " + d.expected_close : ""}${d.next_step ? " · " + d.next_step : ""}</div></div>`)}</section>`)}</div>
    <div class="grid"><section class="card"><h2>${t("forecast_by_month")}</h2><table id="forecast-months"><tr><th>${t("month")}</th><th>${t("deal_amount")}</th><th>${t("deal_weighted")}</th></tr>
      ${either(forecast.by_month.map((m) => html`<tr data-month="${m.month || ""}"><td>${m.month || t("no_close_date")}</td><td>${m.amount.toLocaleString()} ${m.currency}</td><td>${m.weighted.toLocaleString()} ${m.currency}</td></tr>`),
        html`<tr><td colspan="3" class="muted">${t("nothing")}</td></tr>`)}</table></section>
    <section class="card"><h2>${t("forecast_by_owner")}</h2><table id="forecast-owners"><tr><th>${t("owner")}</th><th>${t("deal_amount")}</th><th>${t("deal_weighted")}</th></tr>
      ${either(forecast.by_owner.map((o) => html`<tr><td>${o.owner || t("unowned")}</td><td>${o.amount.toLocaleString()} ${o.currency}</td><td>${o.weighted.toLocaleString()} ${o.currency}</td></tr>`),
        html`<tr><td colspan="3" class="muted">${t("nothing")}</td></tr>`)}</table></section></div>
    <form class="card" id="deal-form"><h2>${t("new_deal")}</h2><div class="grid">
      <label>${t("deal_title")} *<input name="title" required maxlength="200"></label>
      <label>${t("deal_amount")}<input name="amount" type="number" min="0" step="any"></label>
      <label>${t("currency")}<select name="currency">${["CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD"].map((c) => html`<option>${c}</option>`)}</select></label>
      <label>${t("expected_close")}<input name="expected_close" type="date"></label>
      <label>${t("task_contact")}<input name="contact" type="number" min="1"></label></div>
      <button type="submit" class="primary">${t("save")}</button></form>`);
  let dragged = null;
  $$(".deal-card[draggable=true]").forEach((card) => card.addEventListener("dragstart", (event) => {
    dragged = card.dataset.deal;
    event.dataTransfer.setData("text/plain", dragged);
  }));
  $$(".kanban-column").forEach((column) => {
    column.addEventListener("dragover", (event) => event.preventDefault());
    column.addEventListener("drop", async (event) => {
      event.preventDefault();
      const id = event.dataTransfer.getData("text/plain") || dragged;
      if (!id) return;
      const body = {stage: column.dataset.stage};
      if (column.dataset.stage === "lost") {
        const reason = prompt(t("lost_reason_prompt"));
        if (!reason) return;
        body.lost_reason = reason;
      }
      if (await attempt(() => api("PATCH", `/deals/${id}`, body), t("stage_moved"))) reload();
    });
  });
  const form = $("#deal-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {title: form.title.value.trim(), amount: Number(form.amount.value || 0), currency: form.currency.value,
                  expected_close: form.expected_close.value || null, contact_id: form.contact.value ? Number(form.contact.value) : null};
    if (await attempt(() => api("POST", "/deals", body), t("saved"))) reload();
  };
}
