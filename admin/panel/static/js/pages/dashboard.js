// The dashboard page.
import * as Charts from "../charts.js";
import {$, api, html, label, markup, t} from "../core.js";

// ---- dashboard --------------------------------------------------------------------

const DASHBOARD_RANGES = [7, 14, 30, 90];

export async function dashboardPage(main, rest) {
  const days = DASHBOARD_RANGES.includes(Number(rest[0])) ? Number(rest[0]) : 14;
  const d = await api("GET", `/dashboard?days=${days}`);
  const marks = d.alerts.map((a) => ({index: d.days.indexOf(a.day), label: `${label("dimension", a.dimension)} ${a.key}`})).filter((m) => m.index >= 0);
  const campaigns = d.campaigns.length ? html`<div class="table-wrap"><table><tr><th>${t("campaigns")}</th><th>${t("status")}</th>
      ${["enrolled", "sent", "delivered", "replied", "opted_out", "converted"].map((k) => html`<th>${t(k)}</th>`)}</tr>
      ${d.campaigns.map((c) => html`<tr><td><a href="#/campaigns/${c.id}">${c.name}</a></td><td><span class="badge">${label("status", c.status)}</span></td>
      ${["enrolled", "sent", "delivered", "replied", "opted_out", "converted"].map((k) => html`<td>${c[k] ?? ""}</td>`)}</tr>`)}
      </table></div>` : html`<p class="muted">${t("nothing")}</p>`;
  const total = Object.values(d.messages_by_channel).flat().reduce((a, b) => a + b, 0);
  const scored = d.sentiment.reduce((a, x) => a + x.messages, 0), negative = d.sentiment.reduce((a, x) => a + x.negative, 0);
  main.innerHTML = markup(html`<h1>${t("dashboard")}</h1>
    <div class="toolbar row"><select id="dashboard-range" aria-label="${t("range")}">${DASHBOARD_RANGES.map((n) => html`<option value="${n}"${n === days ? " selected" : ""}>${t("last_days", {n})}</option>`)}</select></div>
    ${failingChannels(d.health)}
    <div class="tiles" id="dashboard-tiles"><div class="tile"><strong>${total}</strong><span>${t("tile_messages")}</span></div>
      <div class="tile"><strong>${d.funnel.reduce((a, f) => a + f.count, 0)}</strong><span>${t("tile_leads")}</span></div>
      <div class="tile"><strong>${scored ? Math.round(negative / scored * 100) + "%" : "–"}</strong><span>${t("tile_negative")}</span></div>
      <div class="tile"><strong>${d.alerts.length}</strong><span>${t("tile_alerts")}</span></div></div>
    <div class="grid">
      <section class="card" id="chart-messages"><h3>${t("messages_per_day")}</h3>${Charts.stackedBars(d.days, d.messages_by_channel, t("messages_per_day"))}</section>
      <section class="card" id="chart-funnel"><h3>${t("funnel")}</h3>${Charts.funnel(d.funnel, t("funnel"))}</section>
      <section class="card" id="chart-response"><h3>${t("response_times")}</h3>${Charts.lines(d.days, {
        [t("bot")]: d.response_times.map((r) => r.bot_median_s), [t("person")]: d.response_times.map((r) => r.person_median_s)}, t("response_times"), [], "s")}</section>
      <section class="card" id="chart-sentiment"><h3>${t("sentiment_trend")}</h3>${Charts.lines(d.days, {
        [t("negative")]: d.sentiment.map((s) => s.negative_share)}, t("sentiment_trend"), marks, "%")}</section>
      <section class="card" id="chart-weeks"><h3>${t("weekly_trend")}</h3>${Charts.lines(d.weeks, {
        [t("weekly_customers")]: d.weekly.customers, [t("weekly_leads")]: d.weekly.leads, [t("weekly_won")]: d.weekly.won}, t("weekly_trend"))}</section>
      <section class="card" id="chart-leaders"><h3>${t("rep_leaderboard")}</h3>${d.leaderboard.length ? Charts.stackedBars(d.leaderboard.map((r) => r.name),
        {[t("report_handled")]: d.leaderboard.map((r) => r.handled)}, t("rep_leaderboard")) : html`<p class="muted">${t("nothing")}</p>`}
        <p class="hint"><a href="#/reports">${t("reports")}</a></p></section>
    </div>
    <section class="card"><h3>${t("campaign_results")}</h3>${campaigns}</section>
    ${healthCard(d.health)}`);
  $("#dashboard-range", main).onchange = (event) => { location.hash = `#/dashboard/${event.target.value}`; };
}


// The hub's own health: what waits (a card at the end), and channels whose sends keep failing,
// with what to do (at the top: someone has to act).
function healthCard(h) {
  const figures = [[h.waiting_messages, "waiting_messages"], [h.outbox.pending, "outbox_pending"],
    [h.outbox.in_doubt, "outbox_in_doubt"], [h.outbox.held, "outbox_held"]];
  return html`<section class="card" id="hub-health"><h3>${t("hub_health")}</h3>
    <ul class="plain">${figures.map(([n, key]) => html`<li><strong>${n}</strong> ${t(key)}</li>`)}
      ${h.oldest_due_s ? html`<li>${t("oldest_due")} <strong>${h.oldest_due_s} s</strong></li>` : ""}</ul>
    ${h.failing_channels.length ? "" : html`<p class="muted">${t("health_ok")}</p>`}
  </section>`;
}

function failingChannels(h) {
  if (!h.failing_channels.length) return "";
  return html`<section class="card" role="alert"><ul class="plain" id="failing-channels">${h.failing_channels.map((c) =>
    html`<li class="warning"><strong>${t("keeps_failing", {name: c.name, kind: c.kind, n: c.failed_24h,
      error: c.last_error})}</strong><br>${t("advice_" + c.advice)} <a href="#/channels">${t("channels")}</a></li>`)}</ul></section>`;
}
