// The tasks page: follow-ups with a due time (a rep's own; a manager's people's; everyone's for
// admins and operators), the same tasks reps make with /todo in WeCom or DingTalk.
import {$, $$, api, attempt, either, html, label, markup, ME, reload, t, when} from "../core.js";

const STATES = ["open", "overdue", "done", "all"];
const SUPERVISOR = ["admin", "operator", "manager"].includes(ME.role);

export async function tasksPage(main) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const state = STATES.includes(params.get("state")) ? params.get("state") : "open";
  const owner = Number(params.get("owner")) || null;
  const query = `/tasks?state=${state}${owner ? `&owner_user_id=${owner}` : ""}`;
  const [rows, counts, people] = await Promise.all([api("GET", query),
    SUPERVISOR ? api("GET", "/tasks/by-owner") : Promise.resolve([]),
    ["admin", "manager"].includes(ME.role) ? api("GET", "/users") : Promise.resolve([])]);
  const go = (next) => { location.hash = `#/tasks?${new URLSearchParams(next)}`; };
  main.innerHTML = markup(html`<h1>${t("tasks")}</h1><p class="hint">${t("tasks_hint")}</p>
    ${SUPERVISOR ? html`<section class="card"><h2>${t("tasks_by_owner")}</h2><div class="table-wrap"><table id="task-owners">
      <tr><th>${t("owner")}</th><th>${t("task_state_open")}</th><th>${t("task_state_overdue")}</th><th>${t("tasks_done_week")}</th></tr>
      ${either(counts.map((c) => html`<tr class="clickable" data-owner="${c.owner_user_id}"><td>${c.owner}</td><td>${c.open}</td>
        <td>${c.overdue ? html`<span class="badge bad">${c.overdue}</span>` : "0"}</td><td>${c.done_last_7_days}</td></tr>`),
        html`<tr><td colspan="4" class="muted">${t("nothing")}</td></tr>`)}</table></div></section>` : ""}
    <div class="toolbar"><select id="task-state">${STATES.map((s) => html`<option value="${s}"${s === state ? " selected" : ""}>${t("task_state_" + s)}</option>`)}</select>
      ${owner ? html`<button type="button" id="task-all-owners">${t("tasks_everyone")}</button>` : ""}</div>
    <div class="table-wrap"><table id="task-rows"><tr><th>T</th><th>${t("due")}</th><th>${t("task_title")}</th><th>${t("customer")}</th><th>${t("owner")}</th><th>${t("task_origin")}</th><th></th></tr>
    ${either(rows.map((x) => html`<tr data-task="${x.id}"><td>T${x.id}</td>
      <td>${when(x.due_at)}${x.overdue ? html` <span class="badge bad">${t("task_overdue")}</span>` : ""}${x.done_at ? html` <span class="badge ok">${t("task_done")}</span>` : ""}</td>
      <td>${x.title}</td><td>${x.contact_id ? html`<a href="#/contacts/${x.contact_id}">${x.contact_name}</a>` : "—"}${x.conversation_id ? html` · <a href="#/inbox/${x.conversation_id}">#${x.conversation_id}</a>` : ""}</td>
      <td>${x.owner_name || ""}</td><td>${label("task_origin", x.origin)}</td>
      <td>${x.done_at ? html`<button type="button" data-reopen="${x.id}">${t("task_reopen")}</button>` : html`<button type="button" class="primary" data-done="${x.id}">${t("task_mark_done")}</button>`}</td></tr>`),
      html`<tr><td colspan="7" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    <form class="card" id="task-form"><h2>${t("new_task")}</h2><div class="grid">
      <label>${t("task_title")} *<input name="title" required maxlength="300" placeholder="${t("task_title_example")}"></label>
      <label>${t("due")} *<input name="due" type="datetime-local" required></label>
      ${people.length ? html`<label>${t("owner")}<select name="owner">${people.filter((u) => u.is_active).map((u) => html`<option value="${u.id}"${u.id === ME.id ? " selected" : ""}>${u.display_name || u.username}</option>`)}</select></label>` : ""}
      <label>${t("task_contact")}<input name="contact" type="number" min="1" placeholder="#"></label></div>
      <button type="submit" class="primary">${t("save")}</button></form>`);
  $("#task-state").onchange = (e) => go({state: e.target.value, ...(owner ? {owner} : {})});
  if ($("#task-all-owners")) $("#task-all-owners").onclick = () => go({state});
  $$("#task-owners tr.clickable").forEach((tr) => tr.addEventListener("click", () => go({state, owner: tr.dataset.owner})));
  const change = (id, body, message) => attempt(() => api("PATCH", `/tasks/${id}`, body), message).then((done) => done && reload());
  $$("[data-done]").forEach((b) => b.onclick = () => change(b.dataset.done, {done: true}, t("task_done")));
  $$("[data-reopen]").forEach((b) => b.onclick = () => change(b.dataset.reopen, {done: false}, t("saved")));
  const form = $("#task-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {title: form.title.value.trim(), due_at: new Date(form.due.value).toISOString(),
                  owner_user_id: form.owner ? Number(form.owner.value) : null,
                  contact_id: form.contact.value ? Number(form.contact.value) : null};
    if (await attempt(() => api("POST", "/tasks", body), t("saved"))) reload();
  };
}
