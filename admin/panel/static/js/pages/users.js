// The users page.
import {$, $$, api, attempt, CHANNEL_KINDS, commaList, either, html, label, markup, ME, reload, t, toast} from "../core.js";

// ---- users and audit ----------------------------------------------------------------

export async function usersPage(main) {
  const [users, teams] = await Promise.all([api("GET", "/users"), api("GET", "/teams")]);
  const admin = ME.role === "admin";
  const byId = Object.fromEntries(users.map((u) => [u.id, u]));
  const teamById = Object.fromEntries(teams.map((team) => [team.id, team]));
  const nameOf = (id) => (id ? (byId[id]?.display_name || byId[id]?.username || "#" + id) : "");
  const leaders = users.filter((u) => ["manager", "admin"].includes(u.role) && u.is_active);
  const options = (items, chosen, none) => html`<option value="">${none}</option>${
    items.map(([id, label]) => html`<option value="${id}"${id === chosen ? " selected" : ""}>${label}</option>`)}`;
  const territoryText = (u) => [...(u.territory?.regions || []), ...(u.territory?.industries || [])].join(", ");
  main.innerHTML = markup(html`<h1>${t("users")}</h1>
    <div class="table-wrap"><table id="users-table"><tr><th>#</th><th>${t("username")}</th><th>${t("display_name")}</th><th>${t("role")}</th><th>${t("manager")}</th><th>${t("team")}</th><th>${t("territory")}</th><th></th></tr>
    ${users.map((u) => html`<tr data-user="${u.id}"><td>${u.id}</td><td>${u.username}</td><td>${u.display_name || ""}</td><td><span class="badge">${label("role", u.role)}</span>${u.is_active ? "" : html` <span class="badge bad">${t("switched_off")}</span>`}</td>
      <td>${nameOf(u.manager_user_id)}</td><td>${teamById[u.team_id]?.name || ""}</td><td>${territoryText(u)}</td>
      <td><div class="row actions"><button type="button" data-edit="${u.id}">${t("edit")}</button>${admin ? html`<button type="button" data-password="${u.id}">${t("set_password")}</button>` : ""}</div></td></tr>`)}</table></div>
    <div id="user-editor"></div>
    <h2>${t("teams")}</h2>
    <div class="table-wrap"><table id="teams-table"><tr><th>${t("name")}</th><th>${t("manager")}</th><th>${t("team_channels")}</th><th>${t("members")}</th><th></th></tr>
    ${either(teams.map((team) => html`<tr data-team="${team.id}"><td>${team.name}</td><td>${nameOf(team.manager_user_id)}</td><td>${team.channels.map((c) => html`<span class="badge">${c}</span> `)}</td><td>${team.members}</td>
      <td><div class="row actions">${admin ? html`<button type="button" data-edit-team="${team.id}">${t("edit")}</button><button type="button" class="link" data-delete-team="${team.id}">${t("delete")}</button>` : ""}</div></td></tr>`), html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    ${admin ? html`<form class="card" id="team-form"><h2 id="team-form-title">${t("new_team")}</h2><input type="hidden" name="team_id">
      <div class="step-grid"><label>${t("name")}<input name="name" required maxlength="100"></label>
        <label>${t("manager")}<select name="manager">${options(leaders.map((u) => [u.id, u.display_name || u.username]), null, t("no_manager"))}</select></label></div>
      <fieldset class="row" id="team-channels"><legend>${t("team_channels")}</legend>${CHANNEL_KINDS.map((k) => html`<label class="row"><input type="checkbox" name="channel" value="${k}" style="width:auto"> ${label("kind", k)}</label>`)}</fieldset>
      <div class="hint">${t("team_channels_hint")}</div>
      <button type="submit" class="primary" id="save-team">${t("save")}</button></form>
    <form class="card" id="user-form"><h2>${t("new_user")}</h2><div class="step-grid">
      <label>${t("username")}<input name="username" required pattern="[A-Za-z0-9_.@-]+"></label><label>${t("display_name")}<input name="display_name"></label>
      <label>${t("role")}<select name="role">${["rep", "manager", "operator", "admin"].map((r) => html`<option value="${r}">${label("role", r)}</option>`)}</select></label>
      <label>${t("manager")}<select name="manager">${options(leaders.map((u) => [u.id, u.display_name || u.username]), null, t("no_manager"))}</select></label>
      <label>${t("team")}<select name="team">${options(teams.map((team) => [team.id, team.name]), null, t("no_team"))}</select></label>
      <label>${t("password")}<input name="password" type="password" autocomplete="new-password" minlength="10"></label></div>
      <button type="submit" class="primary">${t("save")}</button></form>` : ""}`);
  $$("[data-password]").forEach((b) => b.onclick = async () => {
    const password = prompt(t("password"));
    if (password) await attempt(() => api("POST", `/users/${b.dataset.password}/password`, {password}), t("password_set"));
  });
  // Admins edit everything about a user; managers their reps' territories.
  $$("[data-edit]").forEach((b) => b.onclick = () => {
    const u = byId[Number(b.dataset.edit)];
    const box = $("#user-editor");
    box.innerHTML = markup(html`<form class="card" id="edit-user-form"><h2>${t("edit_user", {name: u.display_name || u.username})}</h2>
      ${admin ? html`<div class="step-grid"><label>${t("display_name")}<input name="display_name" value="${u.display_name || ""}"></label>
        <label>${t("role")}<select name="role">${["rep", "manager", "operator", "admin"].map((r) => html`<option value="${r}"${r === u.role ? " selected" : ""}>${label("role", r)}</option>`)}</select></label>
        <label>${t("manager")}<select name="manager">${options(leaders.filter((m) => m.id !== u.id).map((m) => [m.id, m.display_name || m.username]), u.manager_user_id, t("no_manager"))}</select></label>
        <label>${t("team")}<select name="team">${options(teams.map((team) => [team.id, team.name]), u.team_id, t("no_team"))}</select></label></div>
        <label class="row"><input type="checkbox" name="is_active"${u.is_active ? " checked" : ""} style="width:auto"> ${t("active_user")}</label>` : ""}
      ${u.is_active ? html`<label>${t("hand_over_to")}<select name="heir">${options(users.filter((x) => x.is_active && x.id !== u.id && ["rep", "manager", "admin"].includes(x.role))
        .map((x) => [x.id, x.display_name || x.username]), null, t("hand_over_nobody"))}</select><span class="hint">${t("hand_over_hint")}</span></label>` : ""}
      <h3>${t("territory")}</h3><div class="step-grid"><label>${t("regions")}<input name="regions" value="${(u.territory?.regions || []).join(", ")}"></label>
        <label>${t("industries")}<input name="industries" value="${(u.territory?.industries || []).join(", ")}"></label></div>
      <div class="row"><button type="submit" class="primary" id="save-user">${t("save")}</button><button type="button" id="cancel-edit">${t("cancel")}</button></div></form>`);
    const form = $("#edit-user-form");
    form.querySelector("[name=" + (admin ? "display_name" : "regions") + "]").focus();
    $("#cancel-edit").onclick = () => { box.innerHTML = ""; };
    form.onsubmit = async (event) => {
      event.preventDefault();
      const heir = form.elements.heir ? form.elements.heir.value : "";
      const leaving = admin && !form.is_active.checked;
      if (heir) {
        const moved = await attempt(() => api("POST", `/users/${u.id}/handover`, {to_user_id: Number(heir), deactivate: leaving}));
        if (moved === undefined) return;
        toast(t("handed_over", {n: moved.reassigned}) + (moved.wecom_transfers ? " · " + t("wecom_transfers_asked", {n: moved.wecom_transfers}) : ""));
      }
      if (admin && await attempt(() => api("PATCH", `/users/${u.id}`, {display_name: form.display_name.value.trim() || null, role: form.role.value,
        manager_user_id: form.manager.value ? Number(form.manager.value) : null, team_id: form.team.value ? Number(form.team.value) : null,
        is_active: form.is_active.checked})) === undefined) return;
      if (await attempt(() => api("PUT", `/users/${u.id}/territory`, {regions: commaList(form.regions.value), industries: commaList(form.industries.value)}), t("saved")) !== undefined) reload();
    };
  });
  const teamForm = $("#team-form");
  if (teamForm) {
    $$("[data-edit-team]").forEach((b) => b.onclick = () => {
      const team = teamById[Number(b.dataset.editTeam)];
      teamForm.team_id.value = team.id;
      teamForm.name.value = team.name;
      teamForm.manager.value = team.manager_user_id || "";
      teamForm.querySelectorAll("[name=channel]").forEach((box) => { box.checked = team.channels.includes(box.value); });
      $("#team-form-title").textContent = t("edit_user", {name: team.name});
      teamForm.name.focus();
    });
    $$("[data-delete-team]").forEach((b) => b.onclick = async () => {
      if (confirm(t("delete_team_confirm")) && await attempt(() => api("DELETE", `/teams/${b.dataset.deleteTeam}`), t("deleted")) !== undefined) reload();
    });
    teamForm.onsubmit = async (event) => {
      event.preventDefault();
      const id = teamForm.team_id.value;
      const body = {name: teamForm.name.value.trim(), manager_user_id: teamForm.manager.value ? Number(teamForm.manager.value) : null,
        channels: [...teamForm.querySelectorAll("[name=channel]:checked")].map((box) => box.value)};
      if (await attempt(() => api(id ? "PUT" : "POST", id ? `/teams/${id}` : "/teams", body), t("saved"))) reload();
    };
  }
  await transfersSection(main, users);
  const form = $("#user-form");
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const created = await attempt(() => api("POST", "/users", {username: form.username.value.trim(), display_name: form.display_name.value.trim() || null,
      role: form.role.value, manager_user_id: form.manager.value ? Number(form.manager.value) : null, team_id: form.team.value ? Number(form.team.value) : null}));
    if (!created) return;
    if (form.password.value && await attempt(() => api("POST", `/users/${created.id}/password`, {password: form.password.value})) === undefined) return reload();
    toast(t("saved"));
    reload();
  };
}

// 在职 / 离职继承: each WeCom customer's move to another rep, and customers of people who left WeCom.
async function transfersSection(main, users) {
  const [transfers, accounts] = await Promise.all([api("GET", "/customer-transfers"), api("GET", "/channel-accounts")]);
  const apps = accounts.filter((a) => a.kind === "wecom");
  const tone = {done: "good", waiting: "warn", pending: "warn", refused: "bad", over_limit: "bad", failed: "bad"};
  // WeCom's refusal in the panel's language where the catalogue knows its code, else as WeCom said it.
  const refusal = (x) => {
    const key = `transfer_refused_${x.errcode}`;
    return t("wecom_refused", {code: x.errcode, why: t(key) === key ? x.reason : t(key)});
  };
  const section = document.createElement("section");
  section.id = "transfers";
  section.innerHTML = markup(html`<h2>${t("wecom_transfers")}</h2><p class="hint">${t("wecom_transfers_hint")}</p>
    <div class="table-wrap"><table id="transfers-table"><tr><th>${t("customer")}</th><th>${t("from_rep")}</th><th>${t("to_rep")}</th><th>${t("status")}</th><th>${t("reason")}</th></tr>
    ${either(transfers.map((x) => html`<tr data-external="${x.external_userid}"><td>${x.contact_name || x.external_userid}${x.is_group ? html` <span class="badge">${t("customer_groups")}</span>` : ""}</td><td>${x.handover_userid}${x.resigned ? html` <span class="badge">${t("left_company")}</span>` : ""}</td><td>${x.takeover_userid}</td>
      <td><span class="badge ${tone[x.status]}">${label("transfer", x.status)}</span></td><td>${x.errcode ? refusal(x) : ""}</td></tr>`), html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    ${apps.length ? html`<form class="card" id="unassigned-form"><h3>${t("unassigned_customers")}</h3>
      <div class="row"><select name="account">${apps.map((a) => html`<option value="${a.id}">${a.name}</option>`)}</select><button type="button" id="list-unassigned">${t("list_unassigned")}</button></div>
      <div id="unassigned-list"></div></form>` : ""}`);
  main.appendChild(section);
  const form = $("#unassigned-form", section);
  if (!form) return;
  $("#list-unassigned", section).onclick = async () => {
    const found = await attempt(() => api("GET", `/customer-transfers/unassigned?account_id=${form.account.value}`));
    if (!found) return;
    const heirs = users.filter((u) => u.is_active && u.role === "rep");
    $("#unassigned-list", section).innerHTML = markup(found.length ? html`<div class="table-wrap"><table id="unassigned-table"><tr><th></th><th>${t("customer")}</th><th>${t("from_rep")}</th></tr>
      ${found.map((c) => html`<tr><td><input type="checkbox" name="customer" value="${c.external_userid}" checked style="width:auto"></td><td>${c.contact_name || c.external_userid}</td><td>${c.handover_userid}</td></tr>`)}</table></div>
      <div class="row"><label>${t("to_rep")}<select name="heir">${heirs.map((u) => html`<option value="${u.id}">${u.display_name || u.username}</option>`)}</select></label>
      <button type="submit" class="primary" id="hand-unassigned">${t("hand_over_customers")}</button></div>` : html`<p class="muted">${t("nothing")}</p>`);
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("[name=customer]:checked")].map((box) => box.value);
    if (!chosen.length || !form.heir) return;
    const rows = await attempt(() => api("POST", "/customer-transfers/unassigned", {channel_account_id: Number(form.account.value), to_user_id: Number(form.heir.value), external_userids: chosen}));
    if (rows) { toast(t("wecom_transfers_asked", {n: rows.length})); reload(); }
  };
}

// Settings: the values in force; the environment's beside each one the panel changed.
