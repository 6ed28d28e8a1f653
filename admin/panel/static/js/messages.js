// Outgoing messages' delivery, shown under each one in the inbox and on a contact's timeline.
import {html, t, when} from "./core.js";

// ---- inbox ------------------------------------------------------------------------

export const UNSETTLED = new Set(["queued", "sending"]);
const DELIVERY_FAILED = new Set(["failed", "unreachable", "cancelled"]);

// Under an outgoing message: where it is, with the platform's reason when it did not go.
export function deliveryLine(d) {
  if (!d) return "";
  const detail = d.detail && d.state !== "delivered" && d.state !== "sent" ? `: ${d.detail}` : "";
  const next = d.state === "queued" && d.next_attempt_at ? ` (${t("d_next", {at: when(d.next_attempt_at)})})` : "";
  const mark = d.state === "delivered" || d.state === "sent" ? "✓ " : DELIVERY_FAILED.has(d.state) ? "✗ " : "";
  const tone = DELIVERY_FAILED.has(d.state) ? " bad" : d.state === "delivered" || d.state === "sent" ? " ok" : "";
  return html`<div class="delivery${tone}" data-state="${d.state}">${mark}${t("d_" + d.state)}${detail}${next}</div>`;
}
