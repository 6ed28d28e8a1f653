// The quick replies page (话术库): what reps send from their chat app with /q N shortcut.
import {$, $$, api, attempt, either, html, markup, ME, reload, t, upload} from "../core.js";

export async function quickRepliesPage(main) {
  const [replies, teams] = await Promise.all([api("GET", "/quick-replies"),
    ["admin", "manager"].includes(ME.role) ? api("GET", "/teams") : Promise.resolve([])]);
  const teamName = Object.fromEntries(teams.map((x) => [x.id, x.name]));
  const scope = (r) => (r.owner_user_id ? t("qr_scope_mine") : r.team_id ? teamName[r.team_id] || t("qr_scope_team") : t("qr_scope_shared"));
  const shared = ["admin", "operator"].includes(ME.role);
  main.innerHTML = markup(html`<h1>${t("quick_replies")}</h1><p class="hint">${t("quick_replies_hint")}</p>
    <div class="table-wrap"><table id="quick-reply-rows"><tr><th>${t("qr_shortcut")}</th><th>${t("name")}</th><th>${t("qr_text")}</th><th>${t("qr_scope")}</th><th></th></tr>
    ${either(replies.map((r) => html`<tr data-reply="${r.id}"><td><code>${r.shortcut || "—"}</code></td><td>${r.title}</td>
      <td>${r.texts.zh || ""}${r.texts.zh && r.texts.en ? html`<br>` : ""}${r.texts.en || ""}${r.image_url ? html`<br><img src="${r.image_url}" alt="" style="max-height:48px">` : ""}${r.file_url ? html`<br>📎 <a href="${r.file_url}" target="_blank" rel="noopener">${r.file_name || r.file_url.split("/").pop()}</a>` : ""}</td><td>${scope(r)}</td>
      <td><button type="button" data-edit="${r.id}">✎</button> <button type="button" class="danger" data-delete="${r.id}">${t("delete")}</button></td></tr>`),
      html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    <form class="card" id="quick-reply-form"><h2 id="quick-reply-title">${t("new_quick_reply")}</h2><input type="hidden" name="id">
      <div class="grid"><label>${t("name")} *<input name="title" required maxlength="100" placeholder="报价单"></label>
        <label>${t("qr_shortcut")}<input name="shortcut" maxlength="30" placeholder="quote"></label>
        <label>${t("link_url")}<input name="link_url" type="url" placeholder="https://"></label>
        <label title="${t("attach_hint")}">${t("qr_picture")}<input name="image_url" type="url" placeholder="https://"><input type="file" id="qr-picture" accept="image/png,image/jpeg,image/gif,image/webp" style="width:auto"></label>
        <label title="${t("attach_hint")}">${t("qr_file")}<input name="file_url" type="url" placeholder="https://"><input name="file_name" maxlength="200" placeholder="${t("qr_file_name")}"><input type="file" id="qr-file" accept=".pdf,.docx,.xlsx,.pptx" style="width:auto"></label>
        <label>${t("qr_scope")}<select name="scope">${shared ? html`<option value="shared">${t("qr_scope_shared")}</option>` : ""}
          ${teams.length ? html`<option value="team">${t("qr_scope_team")}</option>` : ""}<option value="mine">${t("qr_scope_mine")}</option></select></label>
        ${teams.length ? html`<label>${t("team")}<select name="team">${teams.map((x) => html`<option value="${x.id}">${x.name}</option>`)}</select></label>` : ""}</div>
      <div class="grid"><label>${t("qr_text")} (中文)<textarea name="zh" maxlength="2000" placeholder="{name}您好，我是{rep}……"></textarea></label>
        <label>${t("qr_text")} (English)<textarea name="en" maxlength="2000" placeholder="Hi {name}, {rep} here…"></textarea></label></div>
      <p class="hint">${t("qr_variables")}</p>
      <button type="submit" class="primary">${t("save")}</button></form>`);
  const form = $("#quick-reply-form");
  $$("[data-edit]").forEach((b) => b.onclick = () => {
    const r = replies.find((x) => x.id === Number(b.dataset.edit));
    form.id.value = r.id;
    form.title.value = r.title; form.shortcut.value = r.shortcut || ""; form.link_url.value = r.link_url || "";
    form.image_url.value = r.image_url || "";
    form.file_url.value = r.file_url || ""; form.file_name.value = r.file_name || "";
    form.zh.value = r.texts.zh || ""; form.en.value = r.texts.en || "";
    form.scope.value = r.owner_user_id ? "mine" : r.team_id ? "team" : "shared";
    if (form.team && r.team_id) form.team.value = String(r.team_id);
    $("#quick-reply-title").textContent = r.title;
    form.scrollIntoView();
  });
  $$("[data-delete]").forEach((b) => b.onclick = async () => {
    if (confirm(t("delete") + "?") && await attempt(() => api("DELETE", `/quick-replies/${b.dataset.delete}`), t("deleted")) !== undefined) reload();
  });
  form.onsubmit = async (event) => {
    event.preventDefault();
    const value = (name) => form[name].value.trim() || null;
    const picked = $("#qr-picture").files[0];
    if (picked) {
      const uploaded = await attempt(() => upload(picked));
      if (!uploaded) return;
      form.image_url.value = uploaded.url;
    }
    const doc = $("#qr-file").files[0];
    if (doc) {
      const uploaded = await attempt(() => upload(doc));
      if (!uploaded) return;
      form.file_url.value = uploaded.url;
      if (!form.file_name.value.trim()) form.file_name.value = uploaded.name;
    }
    const body = {title: form.title.value.trim(), shortcut: value("shortcut"), link_url: value("link_url"), image_url: value("image_url"), file_url: value("file_url"), file_name: value("file_name"), scope: form.scope.value,
                  team_id: form.scope.value === "team" && form.team ? Number(form.team.value) : null, texts: {zh: value("zh"), en: value("en")}};
    const id = form.id.value;
    if (await attempt(() => api(id ? "PUT" : "POST", id ? `/quick-replies/${id}` : "/quick-replies", body), t("saved"))) reload();
  };
}
