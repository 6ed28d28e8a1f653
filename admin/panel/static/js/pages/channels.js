// The channels page.
import {$, $$, api, attempt, either, html, label, markup, ME, reload, t, toast} from "../core.js";

// ---- channels ---------------------------------------------------------------------

export async function channelsPage(main) {
  const [accounts, kinds] = await Promise.all([api("GET", "/channel-accounts"), api("GET", "/channel-kinds")]);
  main.innerHTML = markup(html`<h1>${t("channels")}</h1>
    <div class="table-wrap"><table id="accounts-table"><tr><th>#</th><th>${t("kind")}</th><th>${t("account_name")}</th><th>${t("webhook_url")}</th><th></th></tr>
    ${either(accounts.map((a) => html`<tr data-account="${a.id}"><td>${a.id}</td><td><span class="badge">${label("kind", a.kind)}</span>${a.is_active ? "" : html` <span class="badge bad">${t("switched_off")}</span>`}</td><td>${a.name}${a.notices.map((n) => html`<p class="hint notice">⚠ ${n}</p>`)}</td>
      <td><div class="copy-field"><input readonly value="${a.webhook_url}" aria-label="${t("webhook_url")}"><button type="button" class="copy">${t("copy")}</button></div></td>
      <td><div class="row actions"><button type="button" data-test="${a.id}">${t("test_connection")}</button><button type="button" data-edit-account="${a.id}">${t("edit")}</button>
        <button type="button" data-toggle="${a.id}">${t(a.is_active ? "switch_off" : "switch_on")}</button>${a.kind === "wecom_kf" ? html`<button type="button" data-links="${a.id}">${t("contact_links")}</button>` : ""}${ME.role === "admin" ? html`<button type="button" data-secrets="${a.id}">${t("callback_secrets")}</button>` : ""}</div></td></tr>`), html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    <div id="account-editor"></div>
    <form class="card" id="channel-form"><h2>${t("add_channel")}</h2>
      <label>${t("kind")}<select name="kind" id="channel-kind">${Object.keys(kinds).map((k) => html`<option value="${k}">${label("kind", k)}</option>`)}</select></label>
      <label>${t("account_name")}<input name="name" required maxlength="200"></label>
      <div id="channel-fields"></div>
      <label>${t("api_base")}<input name="api_base" placeholder="https://…"></label>
      <p class="hint">${t("secrets_note")}</p>
      <div class="row"><button type="button" id="test-connection">${t("test_connection")}</button><button type="submit" class="primary" id="save-channel">${t("save")}</button></div>
      <div id="channel-result"></div></form>`);
  $$(".copy").forEach((b) => b.onclick = () => { const input = b.previousElementSibling; input.select(); navigator.clipboard?.writeText(input.value); toast(t("copied")); });
  const form = $("#channel-form");
  // The credential fields of a kind; when replacing a saved set, none is required.
  const fieldsFor = (kind, {replacing = false} = {}) => {
    const schema = kinds[kind].credentials;
    const required = new Set(schema.required || []);
    return Object.entries(schema.properties || {}).map(([name, prop]) => {
      const secret = /secret|token|password|aes_key|app_secret/i.test(name);
      const type = prop.type === "integer" ? "number" : (secret ? "password" : "text");
      const options = prop.enum || (prop.anyOf || []).flatMap((a) => a.enum || []);
      const input = options.length ? html`<select name="cred_${name}">${options.map((o) => html`<option${o === prop.default ? " selected" : ""}>${o}</option>`)}</select>`
        : prop.type === "object" ? html`<textarea name="cred_${name}" data-json rows="4" placeholder="{ }"${required.has(name) && !replacing ? " required" : ""}></textarea>`
        : html`<input name="cred_${name}" type="${type}" autocomplete="off"${required.has(name) && !replacing ? " required" : ""}${prop.default !== undefined && prop.default !== null ? html` value="${prop.default}"` : ""}>`;
      return html`<label>${label("credential", name)}${required.has(name) ? " *" : ""}${input}${prop.description ? html`<span class="hint">${prop.description}</span>` : ""}</label>`;
    });
  };
  const byId = Object.fromEntries(accounts.map((a) => [a.id, a]));
  $$("[data-test]", main).forEach((b) => b.onclick = async () => {
    const result = await attempt(() => api("POST", `/channel-accounts/${b.dataset.test}/test`));
    if (result) toast(t("connection_ok", {name: result.display_name}));
  });
  $$("[data-toggle]", main).forEach((b) => b.onclick = async () => {
    const account = byId[Number(b.dataset.toggle)];
    if (account.is_active && !confirm(t("switch_off_confirm", {name: account.name}))) return;
    if (await attempt(() => api("PATCH", `/channel-accounts/${account.id}`, {is_active: !account.is_active}), t("saved"))) reload();
  });
  // The callback URL and the token / key to paste into the platform's console: fetched when asked
  // for (the hub audits it), shown masked, revealed and copied one by one.
  $$("[data-secrets]", main).forEach((b) => b.onclick = async () => {
    const found = await attempt(() => api("POST", `/channel-accounts/${b.dataset.secrets}/secrets`));
    if (!found) return;
    const names = Object.keys(found.secrets);
    $("#account-editor", main).innerHTML = markup(html`<section class="card" id="callback-secrets"><h2>${t("callback_secrets")} · ${byId[Number(b.dataset.secrets)].name}</h2>
      <p class="hint">${t("callback_secrets_hint")}</p>
      <label>${t("webhook_url")}<div class="copy-field"><input readonly value="${found.webhook_url}"><button type="button" class="copy-secret">${t("copy")}</button></div></label>
      ${names.length ? names.map((name) => html`<label>${t("secret_" + name)}<div class="copy-field"><input readonly type="password" data-secret="${name}" value="${found.secrets[name]}"><button type="button" class="reveal">${t("reveal")}</button><button type="button" class="copy-secret">${t("copy")}</button></div></label>`)
        : html`<p class="muted">${t("no_callback_secrets")}</p>`}</section>`);
    $$("#callback-secrets .reveal", main).forEach((r) => r.onclick = () => {
      const input = r.previousElementSibling, shown = input.type === "password";
      input.type = shown ? "text" : "password";
      r.textContent = t(shown ? "hide" : "reveal");
    });
    $$("#callback-secrets .copy-secret", main).forEach((c) => c.onclick = () => {
      const input = c.parentElement.querySelector("input");
      navigator.clipboard?.writeText(input.value);
      toast(t("copied"));
    });
  });
  $$("[data-edit-account]", main).forEach((b) => b.onclick = () => {
    const account = byId[Number(b.dataset.editAccount)];
    $("#account-editor", main).innerHTML = markup(html`<form class="card" id="account-form"><h2>${t("edit_user", {name: account.name})}</h2>
      <label>${t("account_name")}<input name="name" required maxlength="200" value="${account.name}"></label>
      <h3>${t("replace_credentials")}</h3><p class="hint">${t("replace_credentials_hint")}</p>
      <div id="account-fields">${fieldsFor(account.kind, {replacing: true})}</div>
      <div class="row"><button type="submit" class="primary" id="save-account">${t("save")}</button><button type="button" id="cancel-account">${t("cancel")}</button></div></form>`);
    const edit = $("#account-form", main);
    $("#cancel-account", main).onclick = () => { $("#account-editor", main).innerHTML = ""; };
    edit.name.focus();
    edit.onsubmit = async (event) => {
      event.preventDefault();
      const fields = [...edit.querySelectorAll("[name^=cred_]")];
      const body = {name: edit.name.value.trim()};
      // Typing into any field means a new set; a pre-filled default or a choice alone does not.
      if (fields.some((el) => el.tagName !== "SELECT" && el.value !== "" && el.value !== el.defaultValue)) {
        body.credentials = Object.fromEntries(fields.filter((el) => el.value !== "").map((el) => [el.name.slice(5), el]));
      }
      const saved = await attempt(() => api("PATCH", `/channel-accounts/${account.id}`, withValues(body)), t("saved"));
      edit.querySelectorAll("input[name^=cred_], textarea[name^=cred_]").forEach((el) => { el.value = ""; });  // secrets leave the page
      if (saved) reload();
    };
  });
  $$("[data-links]", main).forEach((b) => b.onclick = () => contactLinks($("#account-editor", main), byId[Number(b.dataset.links)]));
  const drawFields = () => { $("#channel-fields").innerHTML = markup(fieldsFor(form.kind.value)); };
  form.kind.onchange = drawFields;
  drawFields();
  const collect = () => withValues({kind: form.kind.value, name: form.name.value.trim(), api_base: form.api_base.value.trim() || null,
    credentials: Object.fromEntries($$("#channel-fields [name^=cred_]").filter((el) => el.value !== "").map((el) => [el.name.slice(5), el]))});
  $("#test-connection").onclick = async () => {
    const result = await attempt(async () => {
      const body = collect();
      return api("POST", "/channel-accounts/test", {kind: body.kind, credentials: body.credentials, api_base: body.api_base});
    });
    if (result) $("#channel-result").innerHTML = markup(html`<p class="badge good" id="connection-ok">${t("connection_ok", {name: result.display_name})}</p>`);
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const created = await attempt(async () => api("POST", "/channel-accounts", collect()), t("saved"));
    if (!created) return;
    // Drawn again (secrets leave the page), with the new account listed and its webhook URL to paste.
    await channelsPage(main);
    $("#channel-result", main).innerHTML = markup(html`<h3>${t("webhook_url")}</h3><div class="copy-field"><input readonly id="new-webhook-url" value="${created.webhook_url}"></div>`);
    $("#new-webhook-url", main).scrollIntoView({block: "center"});
  };
}

// A 微信客服 account's contact links: each with its QR code to show and download, a form to make one.
async function contactLinks(box, account) {
  const base = `/channel-accounts/${account.id}/contact-links`;
  const links = await api("GET", base);
  box.innerHTML = markup(html`<section class="card" id="contact-links"><h2>${t("contact_links_of", {name: account.name})}</h2>
    <p class="hint">${t("contact_links_hint")}</p>
    <div class="table-wrap"><table><tr><th>${t("link_label")}</th><th>${t("link_source")}</th><th>URL</th><th></th></tr>
    ${either(links.map((k) => html`<tr data-link="${k.id}"><td>${k.label}</td><td><span class="badge">${k.source}</span></td>
      <td><div class="copy-field"><input readonly value="${k.url}" aria-label="URL"><button type="button" class="copy">${t("copy")}</button></div></td>
      <td><img class="qr" alt="QR ${k.label}" width="120" height="120" src="/api/v1${base}/${k.id}/qr.svg">
        <div class="row"><a href="/api/v1${base}/${k.id}/qr.svg" download="${k.source}.svg">${t("download_qr")}</a>
        <button type="button" data-remove-link="${k.id}">${t("remove")}</button></div></td></tr>`),
      html`<tr><td colspan="4" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    <form id="link-form" class="row">
      <label>${t("link_label")}<input name="label" required maxlength="100"></label>
      <label>${t("link_source")}<input name="source" required maxlength="40"></label>
      <label>${t("link_kf")}<input name="open_kfid" maxlength="66"></label>
      <button type="submit" class="primary">${t("add_link")}</button></form></section>`);
  $$(".copy", box).forEach((b) => b.onclick = () => { const input = b.previousElementSibling; input.select(); navigator.clipboard?.writeText(input.value); toast(t("copied")); });
  $$("[data-remove-link]", box).forEach((b) => b.onclick = async () => {
    const link = links.find((k) => k.id === Number(b.dataset.removeLink));
    if (!confirm(t("remove_link_confirm", {name: link.label}))) return;
    if (await attempt(() => api("DELETE", `${base}/${link.id}`), t("saved")) !== undefined) contactLinks(box, account);
  });
  const form = $("#link-form", box);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const made = await attempt(() => api("POST", base, {label: form.label.value.trim(), source: form.source.value.trim(),
      open_kfid: form.open_kfid.value.trim() || null}), t("saved"));
    if (made) contactLinks(box, account);
  };
  box.scrollIntoView({block: "start"});
}

// A form's credential fields as values: numbers as numbers, a JSON field (keys by version...) parsed,
// with the field named when it is not JSON.
function withValues(body) {
  if (!body.credentials) return body;
  const value = (name, el) => {
    if (el.type === "number") return Number(el.value);
    if (!("json" in el.dataset)) return el.value;
    try {
      return JSON.parse(el.value);
    } catch (error) {
      throw new Error(`${name}: ${t("not_json")} (${error.message})`);
    }
  };
  return {...body, credentials: Object.fromEntries(Object.entries(body.credentials).map(([name, el]) => [name, value(name, el)]))};
}
