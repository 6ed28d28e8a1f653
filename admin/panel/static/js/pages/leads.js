// The leads page.
import {$, $$, api, ApiError, attempt, CSRF, either, html, label, LANG, markup, ME, newestOnly, t, toast} from "../core.js";

export async function leadsPage(main) {
  const supervisor = ["admin", "manager"].includes(ME.role);
  const [{stages}, owners] = await Promise.all([api("GET", "/leads/pipeline"), supervisor ? api("GET", "/users") : []]);
  const importer = ["admin", "operator"].includes(ME.role);
  main.innerHTML = markup(html`<h1>${t("leads")}</h1>
    ${importer ? html`<form class="card" id="import-form"><h2>${t("import_leads")}</h2>
      <p class="hint">${t("import_hint")}</p>
      <div class="row"><input type="file" name="file" accept=".csv,.xlsx,.xlsm" required aria-label="${t("import_leads")}">
      <button type="submit" class="primary" id="start-import">${t("import")}</button></div>
      <div id="import-progress" hidden><progress max="1" value="0" style="width:100%"></progress><div class="muted" id="import-count"></div></div>
      <div id="import-report"></div></form>` : ""}
    <div class="toolbar row" id="lead-filters">
      <select name="status" aria-label="${t("status")}"><option value="open">${t("status_open")}</option><option value="closed">${t("status_closed")}</option><option value="">${t("all_statuses")}</option></select>
      <select name="stage" aria-label="${t("stage")}"><option value="">${t("all_stages")}</option>${stages.map((s) => html`<option value="${s}">${label("stage", s)}</option>`)}</select>
      ${supervisor ? html`<select name="owner" aria-label="${t("owner")}"><option value="">${t("all_owners")}</option>${owners.filter((u) => u.is_active).map((u) => html`<option value="${u.id}">${u.display_name || u.username}</option>`)}</select>` : ""}
      <input type="search" name="q" placeholder="${t("search")}" aria-label="${t("search")}">
      <a class="button" id="export-leads" href="#">${t("export_csv")}</a></div>
    <div class="table-wrap"><table><thead><tr><th>#</th><th>${t("name")}</th><th>${t("company")}</th><th>${t("stage")}</th>
    <th>${t("score")}</th><th>${t("segment")}</th><th>${t("owner")}</th><th>${t("source")}</th><th></th></tr></thead>
    <tbody id="lead-rows"></tbody></table></div>`);
  const filters = $("#lead-filters", main);
  const query = () => {
    const params = new URLSearchParams();
    for (const name of ["status", "stage", "owner", "q"]) {
      const el = filters.querySelector(`[name=${name}]`);
      if (el && el.value.trim()) params.set(name === "owner" ? "owner_user_id" : name, el.value.trim());
    }
    return params;
  };
  const drawLeads = (rows) => {
    $("#lead-rows", main).innerHTML = markup(either(rows.map((l) => html`<tr><td>${l.id}</td><td><a href="#/contacts/${l.contact_id}">${l.contact_name || "#" + l.contact_id}</a></td><td>${l.company || ""}</td>
      <td><select class="lead-stage" data-lead="${l.id}" aria-label="${t("stage")}"${l.status === "open" ? "" : " disabled"}>${(stages.includes(l.stage) ? stages : [l.stage, ...stages]).map((s) => html`<option value="${s}"${s === l.stage ? " selected" : ""}>${label("stage", s)}</option>`)}</select></td><td>${l.score}</td>
      <td>${l.segment}</td><td>${l.owner_name || t("unowned")}</td><td>${(l.source_label || {})[LANG] || l.source || l.source_kind}</td>
      <td>${l.status === "open" ? html`<button type="button" data-convert="${l.id}">${t("to_deal")}</button>` : ""}</td></tr>`), html`<tr><td colspan="9" class="muted">${t("nothing")}</td></tr>`));
    $$("[data-convert]", main).forEach((b) => b.onclick = async () => {
      const deal = await attempt(() => api("POST", `/leads/${b.dataset.convert}/deal`, {}), t("deal_made"));
      if (deal) location.hash = `#/deals?deal=${deal.id}`;
    });
    $$(".lead-stage", main).forEach((select) => select.onchange = async () => {
      await attempt(() => api("POST", `/leads/${select.dataset.lead}/stage`, {stage: select.value}), t("stage_moved"));
      await refresh();  // won or lost closes the lead; a refusal puts the old stage back
    });
  };
  const fresh = newestOnly();
  const refresh = async () => {
    const params = query();
    params.set("limit", "200");
    const rows = await fresh(api("GET", `/leads?${params}`));
    if (rows === undefined) return;  // a newer filter's answer wins
    drawLeads(rows);
    const exported = query();
    exported.set("language", LANG);
    $("#export-leads", main).href = `/api/v1/leads/export?${exported}`;
  };
  filters.querySelectorAll("select").forEach((el) => el.onchange = refresh);
  let typing;
  filters.querySelector("[name=q]").oninput = () => { clearTimeout(typing); typing = setTimeout(refresh, 300); };
  await refresh();
  const form = $("#import-form");
  if (form) form.onsubmit = async (event) => {
    event.preventDefault();
    const file = form.file.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file);
    const button = $("#start-import");
    button.disabled = true;
    $("#import-progress").hidden = false;
    $("#import-report").innerHTML = "";
    try {
      const response = await fetch("/api/v1/leads/import?stream=true", {method: "POST", body, credentials: "same-origin",
                                                                         headers: {"X-CSRF-Token": CSRF}});
      if (!response.ok) throw new ApiError(response.status, (await response.json().catch(() => ({}))).detail);
      // One JSON line per chunk of rows, then the report.
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {done, value} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 1);
          if (line.error) throw new Error(line.error);
          if (line.total !== undefined) {
            $("#import-progress progress").max = Math.max(1, line.total);
            $("#import-progress progress").value = line.rows;
            $("#import-count").textContent = t("import_rows", {n: line.rows, total: line.total});
          }
          if (line.report) {
            showImportReport(line.report);
            await refresh();
          }
        }
      }
    } catch (error) {
      toast(`${t("error")}: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  };
}

// Why a row was rejected, in the panel's language (the API's English reason where it has no code).
const reasonOf = (row) => (row.code ? t(`import_reason_${row.code}`, row.params) : row.reason);

function showImportReport(report) {
  const box = $("#import-report");
  const rejected = report.rejected_rows;
  box.innerHTML = markup(html`<dl class="kv" id="import-summary">${["rows", "contacts_created", "contacts_matched", "leads_opened", "leads_existing", "marketing_consents", "rejected"]
      .map((k) => html`<dt>${t({rows: "import_rows_label", rejected: "import_rejected_count"}[k] || "import_" + k)}</dt><dd data-key="${k}">${report[k]}</dd>`)}</dl>
    ${rejected.length ? html`<h3>${t("import_rejected")}</h3><div class="table-wrap"><table id="rejected-rows"><tr><th>#</th><th>${t("reason")}</th><th>${t("details")}</th></tr>
      ${rejected.map((r) => html`<tr><td>${r.row}</td><td>${reasonOf(r)}</td><td>${Object.values(r.values).filter(Boolean).join(" · ")}</td></tr>`)}</table></div>
      <a class="button" id="rejected-download" download="rejected.csv">${t("import_download")}</a>` : ""}`);
  const link = $("#rejected-download");
  if (link) {
    const names = [...new Set(rejected.flatMap((r) => Object.keys(r.values)))];
    const cell = (v) => `"${String(v ?? "").replace(/"/g, '""')}"`;
    const csv = [["row", "reason", ...names].map(cell).join(","),
                 ...rejected.map((r) => [r.row, reasonOf(r), ...names.map((n) => r.values[n])].map(cell).join(","))].join("\r\n");
    link.href = URL.createObjectURL(new Blob(["\ufeff" + csv], {type: "text/csv"}));
  }
}
