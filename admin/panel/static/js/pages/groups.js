// The customer groups page: WeCom 客户群 with their owner and members, customers linked to their contacts.
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
