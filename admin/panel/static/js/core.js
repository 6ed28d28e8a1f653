// The panel's shared helpers: the signed-in user, texts in both languages, html`` (the one
// place values are escaped), the API client with its CSRF token, toasts.
import {TEXT, VALUES} from "./texts.js";

export const CSRF = document.querySelector('meta[name="csrf-token"]').content;
export const ME = JSON.parse(document.querySelector('meta[name="me"]').content);
export let LANG = document.querySelector('meta[name="language"]').content === "zh" ? "zh" : "en";

export const t = (key, vars = {}) => (TEXT[LANG][key] || TEXT.en[key] || key).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
// A value the hub stores (a stage, a status, a role, a channel kind...) as the panel's language
// says it; one it does not know (a stage an operator named) as it is.
export const label = (group, value) => (value === null || value === undefined ? ""
  : VALUES[LANG][group]?.[value] ?? VALUES.en[group]?.[value] ?? String(value));

// Markup comes only from html`...`: every value put into it is escaped unless it is markup
// itself (another html`...`, or a list of them), so no page escapes a value by hand.
class Html {
  constructor(markup) { this.markup = markup; }
  toString() { return this.markup; }
}
const ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
export const markup = (value) => (value instanceof Html ? value.markup : Array.isArray(value) ? value.map(markup).join("")
  : value === null || value === undefined || value === false ? "" : String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]));
// A list of markup, or what to show when it is empty.
export const either = (items, otherwise) => (items.length ? items : otherwise);
export const html = (strings, ...values) => new Html(strings.reduce((out, text, i) => out + text + (i < values.length ? markup(values[i]) : ""), ""));

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
// Loads that overlap (typing in a search, changing a filter): only the newest may draw.
// `fresh(promise)` gives its value, or undefined once a newer load has started.
export const newestOnly = () => {
  let started = 0;
  return async (promise) => { const mine = ++started; const value = await promise; return mine === started ? value : undefined; };
};
// "a, b，c" (either comma, as Chinese and English keyboards type it) -> ["a", "b", "c"].
export const commaList = (value) => value.split(/[,，]/).map((x) => x.trim()).filter(Boolean);
export const when = (iso) => (iso ? new Date(iso).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", {dateStyle: "short", timeStyle: "short"}) : "");

// ---- the API --------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, detail) {
    const text = Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")
      : (typeof detail === "string" ? detail : JSON.stringify(detail));
    super(text || `HTTP ${status}`);
    this.status = status;
  }
}

export async function api(method, path, body, headers = {}) {
  const options = {method, credentials: "same-origin", headers: {"X-CSRF-Token": CSRF, ...headers}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  if (response.status === 401) {
    location.href = "/admin/login?next=" + encodeURIComponent("/admin" + location.hash);
    throw new ApiError(401, "signed out");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

// A picture or document to send, kept by the hub (POST /media) at an address the platforms fetch.
export async function upload(file) {
  const body = new FormData();
  body.append("file", file);
  const response = await fetch("/api/v1/media", {method: "POST", body, credentials: "same-origin", headers: {"X-CSRF-Token": CSRF}});
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

export function toast(message, bad = false) {
  const box = $("#toast");
  box.textContent = message;
  box.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = "toast"; }, 3500);
}

// Runs an action, shows its error where the user looks; returns its result or undefined.
export async function attempt(action, okMessage) {
  try {
    const result = await action();
    if (okMessage) toast(okMessage);
    return result;
  } catch (error) {
    toast(`${t("error")}: ${error.message}`, true);
    return undefined;
  }
}

export const CHANNEL_KINDS = ["telegram", "wechat", "wecom", "wecom_kf", "dingtalk", "email"];
export const groupsText = (value) => Object.entries(value || {}).map(([name, words]) => `${name}: ${words.join(", ")}`).join("\n");
export const groupsValue = (text) => Object.fromEntries(text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
  const [name, ...rest] = line.split(/[:：]/);
  return [name.trim(), commaList(rest.join(":"))];
}));

export const detailsText = (details) => Object.entries(details || {}).map(([key, value]) =>
  `${key}: ${typeof value === "object" && value !== null ? JSON.stringify(value) : value}`).join("\n");

// The panel's language, switched in place from the chrome.
export function setLanguage(language) { LANG = language; }

// Draw the current page again (after a change it shows).
export const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
