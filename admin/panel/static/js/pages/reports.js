// The reports page: per rep for a period (a manager: their people), each conversation number a
// link to exactly the conversations behind it, a leaderboard, and the same as CSV.
import {$, $$, api, either, html, label, LANG, markup, t, when} from "../core.js";

const METRICS = ["handled", "sla_breaches", "resolved", "negative", "csat"];

const duration = (seconds) => {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return t("duration_s", {n: Math.round(seconds)});
  if (seconds < 3600) return t("duration_min", {n: Math.round(seconds / 60)});
  return t("duration_h", {h: Math.floor(seconds / 3600), m: Math.round((seconds % 3600) / 60)});
};
const share = (value) => (value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`);

export async function reportsPage(main) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const query = new URLSearchParams([...params].filter(([k]) => ["since", "until", "team_id"].includes(k)));
  const [report, teams] = await Promise.all([api("GET", `/reports/reps?${query}`),
    api("GET", "/teams").catch(() => [])]);
  const zone = report.period.timezone;
  const day = (iso, back = 0) => new Date(new Date(iso).getTime() - back).toLocaleDateString("en-CA", {timeZone: zone});
  const since = day(report.period.since), until = day(report.period.until, 1);
  const top = Math.max(1, ...report.rows.map((r) => r.handled));
  const cell = (row, metric) => (row[metric] ? html`<button type="button" class="link" data-user="${row.user_id}" data-metric="${metric}">${row[metric]}</button>` : "0");
  main.innerHTML = markup(html`<h1>${t("reports")}</h1><p class="hint">${t("reports_hint", {sla: report.sla_minutes, zone})}</p>
    <form class="toolbar" id="report-form"><label>${t("since")}<input type="date" name="since" value="${since}" required></label>
      <label>${t("until")}<input type="date" name="until" value="${until}" required></label>
      ${teams.length ? html`<label>${t("team")}<select name="team_id"><option value="">${t("every_team")}</option>${teams.map((x) => html`<option value="${x.id}"${String(x.id) === params.get("team_id") ? " selected" : ""}>${x.name}</option>`)}</select></label>` : ""}
      <button type="submit" class="primary">${t("show")}</button>
      <a class="button" id="report-csv" href="/api/v1/reports/reps.csv?${new URLSearchParams({since, until, language: LANG, ...(params.get("team_id") ? {team_id: params.get("team_id")} : {})})}" download>${t("export_csv")}</a></form>
    <div class="table-wrap"><table id="report-rows"><tr><th>${t("name")}</th><th>${t("report_handled")}</th><th>${t("report_first_response")}</th><th>${t("report_resolution")}</th>
      <th>${t("report_sla_breaches")}</th><th>${t("report_resolved")}</th><th>${t("report_leads")}</th><th>${t("report_won_lost")}</th><th>${t("report_tasks_overdue")}</th>
      <th>${t("report_csat")}</th><th>${t("report_negative")}</th></tr>
      ${either(report.rows.map((r) => html`<tr data-user="${r.user_id}"><td>${r.name}</td><td>${cell(r, "handled")}</td>
        <td title="${t("report_p90")}: ${duration(r.first_response_p90_s)}">${duration(r.first_response_median_s)} · p90 ${duration(r.first_response_p90_s)}</td>
        <td>${duration(r.resolution_median_s)} · p90 ${duration(r.resolution_p90_s)}</td>
        <td>${r.sla_breaches ? html`<span class="badge bad">${cell(r, "sla_breaches")}</span>` : "0"}</td><td>${cell(r, "resolved")}</td>
        <td title="${Object.entries(r.leads_by_stage).map(([s, n]) => `${label("stage", s)}: ${n}`).join(", ")}">${r.leads_created}${r.conversion_rate !== null ? html` · ${share(r.conversion_rate)}` : ""}</td>
        <td>${r.won} / ${r.lost}${r.won_amount ? html` · ${r.won_amount.toLocaleString()}` : ""}</td>
        <td>${r.tasks_overdue ? html`<a href="#/tasks?state=overdue&owner=${r.user_id}">${r.tasks_overdue}</a>` : "0"}</td>
        <td>${r.csat_average ?? "—"} (${cell(r, "csat")})</td><td>${share(r.negative_share)} (${cell(r, "negative")})</td></tr>`),
        html`<tr><td colspan="11" class="muted">${t("nothing")}</td></tr>`)}
      ${report.teams.map((r) => html`<tr class="team-row" data-team="${r.user_id}"><td><strong>${t("team")}: ${r.name}</strong></td><td>${r.handled}</td>
        <td>${duration(r.first_response_median_s)} · p90 ${duration(r.first_response_p90_s)}</td><td>${duration(r.resolution_median_s)} · p90 ${duration(r.resolution_p90_s)}</td>
        <td>${r.sla_breaches}</td><td>${r.resolved}</td><td>${r.leads_created}${r.conversion_rate !== null ? html` · ${share(r.conversion_rate)}` : ""}</td>
        <td>${r.won} / ${r.lost}${r.won_amount ? html` · ${r.won_amount.toLocaleString()}` : ""}</td><td>${r.tasks_overdue}</td>
        <td>${r.csat_average ?? "—"} (${r.csat})</td><td>${share(r.negative_share)} (${r.negative})</td></tr>`)}</table></div>
    <section class="card"><h2>${t("report_leaderboard")}</h2><div id="leaderboard">
      ${report.rows.filter((r) => r.handled).sort((a, b) => b.handled - a.handled).map((r) => html`<div class="row" title="${t("report_leaderboard_tip", {name: r.name, handled: r.handled, median: duration(r.first_response_median_s)})}">
        <span style="width:9em">${r.name}</span><span class="bar" style="display:inline-block;height:12px;background:#4a7bd0;width:${Math.round(240 * r.handled / top)}px"></span> ${r.handled}</div>`)}</div></section>
    <section class="card" id="report-behind" hidden><h2 id="behind-title"></h2><div class="table-wrap"><table id="behind-rows"></table></div></section>`);
  $("#report-form").onsubmit = (event) => {
    event.preventDefault();
    const form = event.target, next = new URLSearchParams({since: form.since.value, until: form.until.value});
    if (form.team_id && form.team_id.value) next.set("team_id", form.team_id.value);
    location.hash = `#/reports?${next}`;
  };
  $$("#report-rows button[data-metric]").forEach((b) => b.onclick = async () => {
    const row = report.rows.find((r) => r.user_id === Number(b.dataset.user));
    const behind = await api("GET", `/reports/reps/${b.dataset.user}/conversations?${new URLSearchParams({metric: b.dataset.metric, since, until})}`);
    $("#behind-title").textContent = `${row.name} · ${t("report_" + b.dataset.metric)} (${behind.length})`;
    $("#behind-rows").innerHTML = markup(html`<tr><th>#</th><th>${t("customer")}</th><th>${t("status")}</th><th>${t("last_message")}</th></tr>
      ${behind.map((c) => html`<tr data-conversation="${c.conversation_id}"><td><a href="#/inbox/${c.conversation_id}">#${c.conversation_id}</a></td>
        <td><a href="#/contacts/${c.contact_id}">${c.name}</a></td><td>${label("status", c.status)}</td><td>${when(c.last_message_at)}</td></tr>`)}`);
    $("#report-behind").hidden = false;
  });
}
