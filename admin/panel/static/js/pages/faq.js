// The faq page.
import {$, $$, api, attempt, commaList, either, html, markup, reload, t} from "../core.js";

// ---- knowledge base -----------------------------------------------------------------

export async function faqPage(main) {
  const entries = await api("GET", "/faq");
  const lines = (s) => s.split("\n").map((x) => x.trim()).filter(Boolean);
  main.innerHTML = markup(html`<h1>${t("faq")}</h1>
    <form class="card toolbar" id="faq-try"><input name="q" placeholder="${t("try_question")}" style="flex:1"><button type="submit">${t("try_question")}</button><div id="faq-try-out" style="flex-basis:100%"></div></form>
    <div class="table-wrap"><table><tr><th>#</th><th>${t("question_zh")}</th><th>${t("question_en")}</th><th>${t("answer_zh")}</th><th></th></tr>
    ${either(entries.map((e) => html`<tr><td>${e.id}</td><td>${(e.questions.zh || []).join(" / ")}</td><td>${(e.questions.en || []).join(" / ")}</td>
      <td>${e.answers.zh || e.answers.en || ""}</td><td><button type="button" data-edit="${e.id}">✎</button> <button type="button" class="danger" data-delete="${e.id}">${t("delete")}</button></td></tr>`), html`<tr><td colspan="5" class="muted">${t("nothing")}</td></tr>`)}</table></div>
    <form class="card" id="faq-form"><h2 id="faq-form-title">${t("new_entry")}</h2><input type="hidden" name="team_id">
      <div class="grid"><label>${t("question_zh")}<textarea name="q_zh"></textarea></label><label>${t("question_en")}<textarea name="q_en"></textarea></label>
      <label>${t("answer_zh")}<textarea name="a_zh"></textarea></label><label>${t("answer_en")}<textarea name="a_en"></textarea></label></div>
      <label>${t("synonyms")}<textarea name="synonyms"></textarea></label>
      <div class="grid"><label>${t("image_url")}<input name="image_url" placeholder="https://"></label><label>${t("link_url")}<input name="link_url" placeholder="https://"></label></div>
      <button type="submit" class="primary">${t("save")}</button></form>`);
  const form = $("#faq-form");
  $$("[data-edit]").forEach((b) => b.onclick = () => {
    const e = entries.find((x) => x.id === Number(b.dataset.edit));
    form.id.value = e.id;
    form.q_zh.value = (e.questions.zh || []).join("\n"); form.q_en.value = (e.questions.en || []).join("\n");
    form.a_zh.value = e.answers.zh || ""; form.a_en.value = e.answers.en || "";
    form.synonyms.value = (e.synonyms || []).map((g) => g.join(", ")).join("\n");
    form.image_url.value = e.image_url || ""; form.link_url.value = e.link_url || "";
    $("#faq-form-title").textContent = `#${e.id}`;
    form.scrollIntoView();
  });
  $$("[data-delete]").forEach((b) => b.onclick = async () => {
    if (confirm(t("delete") + "?") && await attempt(() => api("DELETE", `/faq/${b.dataset.delete}`), t("deleted")) !== undefined) reload();
  });
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = {questions: {}, answers: {}, synonyms: lines(form.synonyms.value).map(commaList),
                  image_url: form.image_url.value.trim() || null, link_url: form.link_url.value.trim() || null};
    if (lines(form.q_zh.value).length) body.questions.zh = lines(form.q_zh.value);
    if (lines(form.q_en.value).length) body.questions.en = lines(form.q_en.value);
    if (form.a_zh.value.trim()) body.answers.zh = form.a_zh.value.trim();
    if (form.a_en.value.trim()) body.answers.en = form.a_en.value.trim();
    const id = form.id.value;
    if (await attempt(() => api(id ? "PUT" : "POST", id ? `/faq/${id}` : "/faq", body), t("saved"))) reload();
  };
  $("#faq-try").onsubmit = async (event) => {
    event.preventDefault();
    const q = event.target.q.value.trim();
    if (!q) return;
    const matches = await attempt(() => api("POST", "/faq/search", {text: q}));
    if (matches) $("#faq-try-out").innerHTML = markup(either(matches.map((m) => html`<div>${Math.round(m.score * 100)}% · <strong>${m.question}</strong> ·
      <span class="badge ${m.confident ? "good" : "warn"}">${t(m.confident ? "confident" : "not_confident")}</span></div>`), t("nothing")));
  };
}
