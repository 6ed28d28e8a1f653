// SCRM Hub admin panel: pages over the REST API (/api/v1), which checks every role.
// The chrome (menu, language, user) and the router that draws one page at a time.
import {$, $$, html, LANG, markup, ME, setLanguage, t} from "./core.js";
import {accountPage} from "./pages/account.js";
import {accountsPage} from "./pages/accounts.js";
import {auditPage} from "./pages/audit.js";
import {campaignsPage} from "./pages/campaigns.js";
import {channelsPage} from "./pages/channels.js";
import {contactWaysPage} from "./pages/contact_ways.js";
import {contactsPage} from "./pages/contacts.js";
import {dashboardPage} from "./pages/dashboard.js";
import {dealsPage} from "./pages/deals.js";
import {faqPage} from "./pages/faq.js";
import {groupsPage} from "./pages/groups.js";
import {inboxPage} from "./pages/inbox.js";
import {leadsPage} from "./pages/leads.js";
import {massSendsPage} from "./pages/mass_sends.js";
import {monitoringPage} from "./pages/monitoring.js";
import {quickRepliesPage} from "./pages/quick_replies.js";
import {reportsPage} from "./pages/reports.js";
import {settingsPage} from "./pages/settings.js";
import {tasksPage} from "./pages/tasks.js";
import {usersPage} from "./pages/users.js";

// ---- navigation and roles ---------------------------------------------------------

const PAGES = [
  {id: "dashboard", roles: ["admin", "operator", "manager"], render: dashboardPage},
  {id: "inbox", roles: ["admin", "operator", "manager", "rep"], render: inboxPage},
  {id: "contacts", roles: ["admin", "operator", "manager", "rep"], render: contactsPage},
  {id: "leads", roles: ["admin", "operator", "manager", "rep"], render: leadsPage},
  {id: "deals", roles: ["admin", "operator", "manager", "rep"], render: dealsPage},
  {id: "accounts", roles: ["admin", "operator", "manager", "rep"], render: accountsPage},
  {id: "tasks", roles: ["admin", "operator", "manager", "rep"], render: tasksPage},
  {id: "campaigns", roles: ["admin", "operator", "manager"], render: campaignsPage},
  {id: "channels", roles: ["admin", "operator"], render: channelsPage},
  {id: "contact-ways", roles: ["admin", "operator", "manager"], render: contactWaysPage},
  {id: "mass-sends", roles: ["admin", "operator", "manager"], render: massSendsPage},
  {id: "groups", roles: ["admin", "operator", "manager"], render: groupsPage},
  {id: "faq", roles: ["admin", "operator"], render: faqPage},
  {id: "quick-replies", roles: ["admin", "operator", "manager", "rep"], render: quickRepliesPage},
  {id: "reports", roles: ["admin", "operator", "manager"], render: reportsPage},
  {id: "monitoring", roles: ["admin", "operator", "manager"], render: monitoringPage},
  {id: "users", roles: ["admin", "manager"], render: usersPage},
  {id: "settings", roles: ["admin", "manager"], render: settingsPage},
  {id: "audit", roles: ["admin"], render: auditPage},
  {id: "account", roles: ["admin", "operator", "manager", "rep"], render: accountPage, hidden: true},
];
let stopPage = () => {};
let routeSeq = 0;

function drawChrome() {
  $("#nav").innerHTML = markup(PAGES.filter((p) => p.roles.includes(ME.role) && !p.hidden)
    .map((p) => html`<a href="#/${p.id}" data-page="${p.id}">${t(p.id)}</a>`));
  $("#who").textContent = `${ME.display_name || ME.username} · ${ME.role}`;
  $("#logout").textContent = t("sign_out");
  const other = LANG === "zh" ? "en" : "zh";
  const switcher = $("#language-switch");
  switcher.textContent = t("other_language");
  switcher.href = `/admin/language/${other}?next=${encodeURIComponent("/admin")}`;
  switcher.onclick = (event) => {
    // Switch in place (the cookie is set by the hub for the next visit too).
    event.preventDefault();
    fetch(switcher.href, {credentials: "same-origin", redirect: "manual"}).finally(() => {
      setLanguage(other);
      document.documentElement.lang = other === "zh" ? "zh-CN" : "en";
      drawChrome();
      route();
    });
  };
}

export async function route() {
  stopPage();
  stopPage = () => {};
  const [, pageId = "", ...rest] = (location.hash || "#/").split("?")[0].split("/");  // #/page/rest?filters
  const allowed = PAGES.filter((p) => p.roles.includes(ME.role));
  const page = PAGES.find((p) => p.id === pageId) || allowed[0];
  $$("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page.id));
  $("#nav").classList.remove("open");
  // Each visit renders into its own section: a slower earlier page that finishes late
  // writes into a section no longer shown, and its timers are stopped at once.
  const seq = ++routeSeq;
  const main = document.createElement("section");
  $("#main").replaceChildren(main);
  if (!page.roles.includes(ME.role)) {
    main.innerHTML = markup(html`<div class="card refused" id="refused">${t("refused")}</div>`);
    return;
  }
  main.innerHTML = markup(html`<p class="muted">${t("loading")}</p>`);
  try {
    const stop = await page.render(main, rest);
    if (typeof stop === "function") {
      if (seq === routeSeq) stopPage = stop;
      else stop();
    }
  } catch (error) {
    main.innerHTML = markup(error.status === 403 ? html`<div class="card refused" id="refused">${t("refused")}</div>`
      : html`<div class="card error">${t("error")}: ${error.message}</div>`);
  }
}

// ---- start ------------------------------------------------------------------------

$("#menu-toggle").onclick = () => $("#nav").classList.toggle("open");
window.addEventListener("hashchange", route);
drawChrome();
route();
