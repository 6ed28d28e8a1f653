// The customer groups page: WeCom 客户群 with their owner and members, customers linked to their contacts.
import {lines} from "../charts.js";
import {$, api, attempt, either, html, label, markup, ME, reload, t, when} from "../core.js";

export async function groupsPage(main, [id] = []) {
  if (id) return groupPage(main, Number(id));
  const groups = await api("GET", "/customer-groups");
  main.innerHTML = markup(html`<h1>${t("customer_groups")}</h1><p class="hint">${t("customer_groups_hint")}</p>
    ${["admin", "operator"].includes(ME.role) ? html`<p><button type="button" id="sync-groups">${t("read_again")}</button></p>` : ""}
    <div class="table-wrap"><table id="group-rows"><tr><th>${t("name")}</th><th>${t("owner")}</th><th>${t("customers_count")}</th><th>${t("staff_count")}</th><th>${t("created")}</th><th>${t("status")}</th></tr>
    ${either(groups.map((g) => html`<tr data-group="${g.id}"><td><a href="#/groups/${g.id}">${g.name || g.chat_id}</a></td><td>${g.owner_userid}</td><td>${g.customers}</td><td>${g.staff}</td>
      <td>${when(g.created_at)}</td><td>${g.dismissed_at ? html`<span class="badge bad">${t("dismissed")}</span>` : html`<span class="badge good">${t("active")}</span>`}</td></tr>`),
      html`<tr><td colspan="6" class="muted">${t("nothing")}</td></tr>`)}</table></div>`);
  const sync = $("#sync-groups");
  if (sync) sync.onclick = async () => { if (await attempt(() => api("POST", "/customer-groups/sync"), t("saved"))) reload(); };
  if (groups.length) await statisticsSection(main, groups[0].channel_account_id);
  await joinWaysSection(main, groups);
}

// The groups by day as WeCom counts them: new members and messages, the last two weeks.
async function statisticsSection(main, accountId) {
  const stats = await api("GET", `/customer-groups/statistics?account_id=${accountId}&days=14`);
  if (!stats.days.length) return;
  const section = document.createElement("section");
  section.className = "card";
  section.id = "group-stats";
  section.innerHTML = markup(html`<h2>${t("group_stats")}</h2>${lines(stats.days.map((d) => d.day.slice(5)),
    {[t("new_members")]: stats.days.map((d) => d.new_member_cnt), [t("members_left")]: stats.days.map((d) => d.left),
     [t("group_messages")]: stats.days.map((d) => d.msg_total)}, t("group_stats"))}`);
  main.appendChild(section);
}

// Group QR codes (加入群聊): customers who scan one join the first of its groups with room.
async function joinWaysSection(main, groups) {
  const ways = await api("GET", "/customer-groups/join-ways");
  const manages = ["admin", "operator"].includes(ME.role);
  const live = groups.filter((g) => !g.dismissed_at);
  const nameOf = Object.fromEntries(groups.map((g) => [g.chat_id, g.name || g.chat_id]));
  const section = document.createElement("section");
  section.id = "join-ways";
  section.innerHTML = markup(html`<h2>${t("group_codes")}</h2><p class="hint">${t("group_codes_hint")}</p>
    <div class="table-wrap"><table id="join-way-rows"><tr><th>${t("name")}</th><th>state</th><th>${t("customer_groups")}</th><th>${t("joined_through")}</th><th>${t("qr_code")}</th><th></th></tr>
    ${either(ways.map((w) => html`<tr data-way="${w.id}"><td>${w.name}</td><td><code>${w.state}</code></td><td>${w.chat_ids.map((c) => nameOf[c] || c).join(" → ")}</td><td data-key="joined">${w.joined}</td>
      <td>${w.qr_code ? html`<a href="${w.qr_code}" target="_blank" rel="noopener" download><img class="qr-thumb" src="${w.qr_code}" alt="${t("qr_code")}" width="56" height="56"></a>` : ""}</td>
      <td>${manages ? html`<button type="button" class="danger" data-delete-way="${w.id}">${t("delete")}</button>` : ""}</td></tr>`),
      html`<tr><td colspan="6" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    ${manages && live.length ? html`<form class="card" id="join-way-form"><h3>${t("new_group_code")}</h3>
      <div class="grid"><label>${t("name")} *<input name="name" required maxlength="30"></label>
        <label>state *<input name="state" required maxlength="30" pattern="[0-9A-Za-z_\-]+"></label>
        <label>${t("customer_groups")} (≤ 5)<select name="groups" multiple size="4">${live.map((g) => html`<option value="${g.id}" data-account="${g.channel_account_id}">${g.name || g.chat_id}</option>`)}</select></label>
        <label class="check"><input type="checkbox" name="auto" checked> ${t("auto_create_room")}</label></div>
      <label>${t("group_welcome")}<textarea name="welcome" maxlength="1000"></textarea></label>
      <div class="grid"><label>${t("image_url")}<input name="image_url" type="url" placeholder="https://…/welcome.png"></label>
        <label>${t("link_url")}<input name="link_url" type="url" placeholder="https://"></label>
        <label>${t("link_title")}<input name="link_title" maxlength="128"></label></div>
      <fieldset><legend>${t("miniprogram_card")}</legend><p class="hint">${t("miniprogram_hint")}</p>
        <div class="grid"><label>AppID<input name="mp_appid" pattern="wx[0-9a-f]{16}" placeholder="wx…"></label>
        <label>${t("miniprogram_page")}<input name="mp_page" maxlength="300" placeholder="pages/index/index"></label>
        <label>${t("miniprogram_title")}<input name="mp_title" maxlength="64"></label></div></fieldset>
      <button type="submit" class="primary">${t("save")}</button></form>` : ""}`);
  main.appendChild(section);
  section.querySelectorAll("[data-delete-way]").forEach((b) => b.onclick = async () => {
    if (confirm(t("delete") + "?") && await attempt(() => api("DELETE", `/customer-groups/join-ways/${b.dataset.deleteWay}`), t("deleted")) !== undefined) reload();
  });
  const form = $("#join-way-form", section);
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const chosen = [...form.groups.selectedOptions];
    if (!chosen.length) return;
    const value = (name) => form[name].value.trim() || null;
    const card = {image_url: value("image_url"), link_url: value("link_url"), link_title: value("link_title"),
                  miniprogram: value("mp_appid") ? {appid: value("mp_appid"), page: value("mp_page"), title: value("mp_title")} : null};
    const made = await attempt(() => api("POST", "/customer-groups/join-ways", {channel_account_id: Number(chosen[0].dataset.account),
      name: form.name.value.trim(), state: form.state.value.trim(), group_ids: chosen.map((o) => Number(o.value)),
      auto_create_room: form.auto.checked, welcome: value("welcome"), welcome_card: card}), t("saved"));
    if (made) reload();
  };
}

async function groupPage(main, id) {
  const group = await api("GET", `/customer-groups/${id}`);
  main.innerHTML = markup(html`<p><a href="#/groups">← ${t("customer_groups")}</a></p><h1>${group.name || group.chat_id}</h1>
    <section class="card"><dl class="kv"><dt>${t("owner")}</dt><dd>${group.owner_userid}</dd><dt>${t("customers_count")}</dt><dd data-key="customers">${group.customers}</dd>
      <dt>${t("staff_count")}</dt><dd>${group.staff}</dd>${group.notice ? html`<dt>${t("notice")}</dt><dd>${group.notice}</dd>` : ""}</dl></section>
    <div class="table-wrap"><table id="group-members"><tr><th>${t("name")}</th><th>${t("kind_label")}</th><th>${t("join_scene")}</th><th>${t("joined")}</th></tr>
    ${group.members.map((m) => html`<tr data-member="${m.userid}"><td>${m.contact_id ? html`<a href="#/contacts/${m.contact_id}">${m.name || m.userid}</a>` : (m.name || m.userid)}</td>
      <td>${t(m.is_customer ? "customer" : "colleague")}</td><td>${m.join_scene ? label("join_scene", String(m.join_scene)) : ""}</td><td>${when(m.joined_at)}</td></tr>`)}</table></div>`);
}
