// The account page.
import {$, api, attempt, html, markup, ME, t, toast} from "../core.js";

export async function accountPage(main) {
  main.innerHTML = markup(html`<h1>${ME.display_name || ME.username}</h1>
    <form class="card" id="password-form" style="max-width:420px"><h2>${t("change_password")}</h2>
      <label>${t("current_password")}<input name="current" type="password" autocomplete="current-password" required></label>
      <label>${t("new_password")}<input name="next" type="password" autocomplete="new-password" minlength="10" required></label>
      <label>${t("repeat_password")}<input name="again" type="password" autocomplete="new-password" minlength="10" required></label>
      <p class="hint">${t("password_rules")}</p>
      <button type="submit" class="primary">${t("save")}</button></form>`);
  const form = $("#password-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    if (form.next.value !== form.again.value) return toast(t("passwords_differ"), true);
    const done = await attempt(() => api("POST", "/me/password", {current_password: form.current.value, new_password: form.next.value}));
    if (done !== undefined) location.href = "/admin/login";  // every session ends with the old password
  };
}
